//! Cron schedules as Kubernetes reads a CronJob's `spec.schedule`: the standard five fields
//! (minute, hour, day of month, month, day of week, with `*`, `?`, ranges, steps, lists and
//! the names `jan`..`dec`, `sun`..`sat`), the descriptors `@yearly`/`@annually`,
//! `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly` and `@every <duration>`, and an
//! optional `TZ=zone` or `CRON_TZ=zone` prefix. Kubernetes parses with robfig/cron's
//! standard parser and shows its error text in a 422, so this crate accepts exactly that
//! syntax (no seconds field, no `L`, `W`, `#`, no 7 for Sunday) and words its errors the
//! same way; the cron crates on crates.io each accept a different dialect.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! let schedule = cron::parse("30 2 * * mon-fri").unwrap().in_zone(cron::load_location("Europe/Paris").unwrap());
//! let after = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap(); // a Friday
//! assert_eq!(schedule.next(after), Some(Utc.with_ymd_and_hms(2026, 11, 23, 1, 30, 0).unwrap()));
//! assert_eq!(cron::parse("* * *").unwrap_err(), "expected exactly 5 fields, found 3: [* * *]");
//! ```

mod calendar;
mod duration;
mod fields;

use chrono::{DateTime, Duration, Utc};
pub use chrono_tz::Tz;

/// A parsed schedule: when it fires, and in which time zone its fields are read.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    kind: Kind,
    /// The zone of a `TZ=` prefix; otherwise the one given by [`Schedule::in_zone`], or UTC.
    zone: Option<Tz>,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Calendar(fields::Fields),
    /// `@every`: a constant delay, whole seconds, at least one.
    Every(Duration),
}

/// Parses `spec` as Kubernetes' validation and CronJob controller do; the error is the text
/// Kubernetes shows.
pub fn parse(spec: &str) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let (zone, spec) = match spec.strip_prefix("TZ=").or_else(|| spec.strip_prefix("CRON_TZ=")) {
        Some(rest) => {
            let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let zone = load_location(name).map_err(|e| format!("provided bad location {name}: {e}"))?;
            (Some(zone), rest.trim())
        }
        None => (None, spec),
    };
    let kind = if spec.starts_with('@') { descriptor(spec)? } else { Kind::Calendar(fields::Fields::parse(spec)?) };
    Ok(Schedule { kind, zone })
}

fn descriptor(spec: &str) -> Result<Kind, String> {
    let fields = match spec {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => {
            let Some(text) = spec.strip_prefix("@every ") else {
                return Err(format!("unrecognized descriptor: {spec}"));
            };
            let delay = duration::parse(text).map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
            // Less than a second fires every second; fractions of a second are dropped.
            let delay = Duration::seconds(delay.num_seconds().max(1));
            return Ok(Kind::Every(delay));
        }
    };
    Ok(Kind::Calendar(fields::Fields::parse(fields)?))
}

/// The zone this process runs in, as Go finds its `time.Local` (kube-controller-manager reads
/// the schedules of CronJobs without a timeZone in it): `$TZ` if set (empty is UTC), else the
/// zone `/etc/localtime` links to. UTC if neither names a zone (a copied, not linked,
/// /etc/localtime cannot be named).
pub fn local_zone() -> Tz {
    static LOCAL: std::sync::LazyLock<Tz> = std::sync::LazyLock::new(|| {
        zone_of_environment(std::env::var("TZ").ok(), std::fs::read_link("/etc/localtime").ok()).unwrap_or(Tz::UTC)
    });
    *LOCAL
}

fn zone_of_environment(tz: Option<String>, localtime: Option<std::path::PathBuf>) -> Option<Tz> {
    match tz {
        Some(name) => load_location(name.trim_start_matches(':')).ok(),
        None => {
            let target = localtime?;
            let target = target.to_str()?;
            let (_, name) = target.split_once("zoneinfo/")?;
            load_location(name).ok()
        }
    }
}

/// The IANA time zone of this name, with Go's `time.LoadLocation` error for an unknown one.
pub fn load_location(name: &str) -> Result<Tz, String> {
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    name.parse().map_err(|_| format!("unknown time zone {name}"))
}

impl Schedule {
    /// Reads the fields in `zone`, unless the spec named its own with `TZ=`.
    pub fn in_zone(mut self, zone: Tz) -> Schedule {
        self.zone.get_or_insert(zone);
        self
    }

    /// The first time strictly after `after` that the schedule fires; None if it never does
    /// within five years (a day that does not exist, such as February 30th).
    pub fn next(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Calendar(fields) => calendar::next(fields, self.zone.unwrap_or(Tz::UTC), after),
            Kind::Every(delay) => {
                let whole_second = after - Duration::nanoseconds(after.timestamp_subsec_nanos().into());
                Some(whole_second + *delay)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn next(spec: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        parse(spec).unwrap().next(after)
    }

    #[test]
    fn descriptors_are_their_five_fields() {
        let after = at(2026, 11, 23, 10, 30, 0); // a Monday
        assert_eq!(next("@hourly", after), Some(at(2026, 11, 23, 11, 0, 0)));
        assert_eq!(next("@daily", after), Some(at(2026, 11, 24, 0, 0, 0)));
        assert_eq!(next("@midnight", after), Some(at(2026, 11, 24, 0, 0, 0)));
        assert_eq!(next("@weekly", after), Some(at(2026, 11, 29, 0, 0, 0)));
        assert_eq!(next("@monthly", after), Some(at(2026, 12, 1, 0, 0, 0)));
        assert_eq!(next("@yearly", after), Some(at(2027, 1, 1, 0, 0, 0)));
        assert_eq!(next("@annually", after), Some(at(2027, 1, 1, 0, 0, 0)));
    }

    #[test]
    fn every_is_a_constant_delay_in_whole_seconds() {
        let after = at(2026, 11, 23, 10, 30, 0) + Duration::milliseconds(400);
        assert_eq!(next("@every 1h30m", after), Some(at(2026, 11, 23, 12, 0, 0)));
        assert_eq!(next("@every 90s", after), Some(at(2026, 11, 23, 10, 31, 30)));
        assert_eq!(next("@every 10ms", after), Some(at(2026, 11, 23, 10, 30, 1)));
        assert_eq!(next("@every 2.5s", after), Some(at(2026, 11, 23, 10, 30, 2)));
    }

    #[test]
    fn descriptor_errors() {
        assert_eq!(parse("@sometimes").unwrap_err(), "unrecognized descriptor: @sometimes");
        assert_eq!(parse("@daily ").unwrap_err(), "unrecognized descriptor: @daily ");
        assert_eq!(
            parse("@every 5x").unwrap_err(),
            r#"failed to parse duration @every 5x: time: unknown unit "x" in duration "5x""#
        );
        assert_eq!(parse("").unwrap_err(), "empty spec string");
    }

    #[test]
    fn a_tz_prefix_names_the_zone() {
        let schedule = parse("TZ=America/New_York 0 9 * * *").unwrap().in_zone(Tz::Asia__Tokyo);
        // 9:00 in New York in November is 14:00 UTC.
        assert_eq!(schedule.next(at(2026, 11, 23, 12, 0, 0)), Some(at(2026, 11, 23, 14, 0, 0)));
        assert_eq!(
            parse("CRON_TZ=Mars/Olympus 0 9 * * *").unwrap_err(),
            "provided bad location Mars/Olympus: unknown time zone Mars/Olympus"
        );
        assert!(parse("CRON_TZ=UTC @hourly").is_ok());
    }

    #[test]
    fn a_zone_moves_the_fields() {
        let tokyo = parse("0 9 * * *").unwrap().in_zone(load_location("Asia/Tokyo").unwrap());
        assert_eq!(tokyo.next(at(2026, 11, 23, 12, 0, 0)), Some(at(2026, 11, 24, 0, 0, 0)));
        assert_eq!(load_location("Asia/Tokio").unwrap_err(), "unknown time zone Asia/Tokio");
        assert_eq!(load_location("").unwrap(), Tz::UTC);
    }

    #[test]
    fn the_local_zone_is_tz_or_what_etc_localtime_links_to() {
        let link = |p: &str| Some(std::path::PathBuf::from(p));
        assert_eq!(
            zone_of_environment(Some("Asia/Kolkata".into()), link("/usr/share/zoneinfo/UTC")),
            Some(Tz::Asia__Kolkata)
        );
        assert_eq!(zone_of_environment(Some(":Europe/Paris".into()), None), Some(Tz::Europe__Paris));
        assert_eq!(zone_of_environment(Some(String::new()), None), Some(Tz::UTC));
        assert_eq!(
            zone_of_environment(None, link("/usr/share/zoneinfo/America/New_York")),
            Some(Tz::America__New_York)
        );
        assert_eq!(zone_of_environment(None, link("/var/db/timezone/zoneinfo/Etc/UTC")), Some(Tz::Etc__UTC));
        assert_eq!(zone_of_environment(None, None), None);
    }

    #[test]
    fn an_impossible_day_never_fires() {
        assert_eq!(next("0 0 30 2 *", at(2026, 1, 1, 0, 0, 0)), None);
        // February 29th waits for a leap year.
        assert_eq!(next("0 0 29 2 *", at(2026, 1, 1, 0, 0, 0)), Some(at(2028, 2, 29, 0, 0, 0)));
    }
}
