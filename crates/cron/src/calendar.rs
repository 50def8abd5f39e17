//! When a five-field schedule next fires: the fields are read on the wall clock of a time
//! zone, searching month, then day, then hour, then minute. Hours and minutes advance in
//! real time, so a time skipped by a daylight-saving jump does not fire and an hour lived
//! twice fires twice, as with robfig/cron (which Kubernetes uses). The search gives up five
//! years on.

use crate::fields::Fields;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

pub fn next(fields: &Fields, zone: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // The next whole minute after `after`.
    let mut t =
        after - Duration::nanoseconds(after.timestamp_subsec_nanos().into()) - Duration::seconds(after.second().into())
            + Duration::minutes(1);
    let last_year = t.with_timezone(&zone).year() + 5;
    loop {
        let local = t.with_timezone(&zone);
        if local.year() > last_year {
            return None;
        }
        let date = local.date_naive();
        if !fields.month(local.month()) {
            let first_of_next = date.with_day(1)?.checked_add_months(chrono::Months::new(1))?;
            t = start_of_day(zone, first_of_next)?;
        } else if !fields.day(local.day(), local.weekday().num_days_from_sunday()) {
            t = start_of_day(zone, date.succ_opt()?)?;
        } else if !fields.hour(local.hour()) {
            t += Duration::minutes(60 - i64::from(local.minute()));
        } else if !fields.minute(local.minute()) {
            t += Duration::minutes(1);
        } else {
            return Some(t);
        }
    }
}

/// The first instant of a day on the zone's wall clock: midnight, or, where a clock change
/// skips midnight, the first minute that exists.
fn start_of_day(zone: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    (0..=180)
        .find_map(|m| zone.from_local_datetime(&(midnight + Duration::minutes(m))).earliest())
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn next_utc(spec: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        next(&Fields::parse(spec).unwrap(), Tz::UTC, after)
    }

    #[test]
    fn strictly_after_on_whole_minutes() {
        assert_eq!(next_utc("* * * * *", at(2026, 11, 23, 10, 0, 0)), Some(at(2026, 11, 23, 10, 1, 0)));
        assert_eq!(
            next_utc("* * * * *", at(2026, 11, 23, 10, 0, 59) + Duration::milliseconds(999)),
            Some(at(2026, 11, 23, 10, 1, 0))
        );
        assert_eq!(next_utc("*/5 * * * *", at(2026, 11, 23, 10, 3, 0)), Some(at(2026, 11, 23, 10, 5, 0)));
        assert_eq!(next_utc("30 * * * *", at(2026, 11, 23, 10, 30, 0)), Some(at(2026, 11, 23, 11, 30, 0)));
    }

    #[test]
    fn rolls_over_days_months_and_years() {
        assert_eq!(next_utc("15 2 * * *", at(2026, 12, 31, 3, 0, 0)), Some(at(2027, 1, 1, 2, 15, 0)));
        assert_eq!(next_utc("0 0 31 * *", at(2026, 11, 1, 0, 0, 0)), Some(at(2026, 12, 31, 0, 0, 0)));
        assert_eq!(next_utc("0 12 * feb sat", at(2026, 11, 23, 0, 0, 0)), Some(at(2027, 2, 6, 12, 0, 0)));
        // Either day field may match when neither is a star: the 1st, or a Friday.
        assert_eq!(next_utc("0 0 1 * fri", at(2026, 11, 23, 0, 0, 0)), Some(at(2026, 11, 27, 0, 0, 0)));
        assert_eq!(next_utc("0 0 1 * fri", at(2026, 11, 27, 0, 0, 0)), Some(at(2026, 12, 1, 0, 0, 0)));
    }

    #[test]
    fn daylight_saving_time() {
        let new_york: Tz = "America/New_York".parse().unwrap();
        let fields = Fields::parse("30 2 * * *").unwrap();
        // 2:30 does not exist on 2026-03-08 in New York: the next is on the 9th (6:30 UTC, EDT).
        assert_eq!(next(&fields, new_york, at(2026, 3, 8, 5, 0, 0)), Some(at(2026, 3, 9, 6, 30, 0)));
        // 1:30 happens twice on 2026-11-01: at 5:30 UTC (EDT) and at 6:30 UTC (EST).
        let fields = Fields::parse("30 1 * * *").unwrap();
        assert_eq!(next(&fields, new_york, at(2026, 11, 1, 4, 0, 0)), Some(at(2026, 11, 1, 5, 30, 0)));
        assert_eq!(next(&fields, new_york, at(2026, 11, 1, 5, 30, 0)), Some(at(2026, 11, 1, 6, 30, 0)));
        // In Santiago the clocks go from 0:00 to 1:00 on 2026-09-06: that day starts at 1:00.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let fields = Fields::parse("5 * 6 9 *").unwrap();
        assert_eq!(next(&fields, santiago, at(2026, 9, 5, 12, 0, 0)), Some(at(2026, 9, 6, 4, 5, 0)));
    }
}
