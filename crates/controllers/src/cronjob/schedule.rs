//! Which scheduled time a CronJob is due for, and when to look again, as Kubernetes' CronJob
//! controller decides: the times counted from the last schedule time (or the creation time),
//! no further back than `startingDeadlineSeconds`; the most recent missed time is the one
//! to run (earlier misses are not caught up); more than 100 missed times is reported as a
//! clock or deadline problem. The controller wakes 100 ms after the next time.

use chrono::{DateTime, Duration, Utc};
use cron::Schedule;

/// How many scheduled times went by without a Job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    /// More than 100: the controller warns (TooManyMissedTimes).
    Many,
}

/// Slack after a scheduled time before waking, for clocks that disagree a little.
const WAKE_DELAY: Duration = Duration::milliseconds(100);

struct Recent {
    most_recent: Option<DateTime<Utc>>,
    missed: Missed,
}

/// The most recent scheduled time after `since` (the last schedule time, else the creation
/// time) and at or before `now`, no further back than `deadline` seconds if given, and how
/// many were missed. The count is estimated from the gap between the next two times, as
/// Kubernetes estimates it, so that a controller down for years does not walk every one.
fn most_recent(
    schedule: &Schedule,
    since: DateTime<Utc>,
    deadline: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Recent, String> {
    let earliest = match deadline {
        Some(deadline) => since.max(now - Duration::seconds(deadline)),
        None => since,
    };
    let none = |missed| Ok(Recent { most_recent: None, missed });
    let too_close = || "time difference between two schedules is less than 1 second".to_string();
    let t1 = schedule.next(earliest).ok_or_else(too_close)?;
    if now < t1 {
        return none(Missed::None);
    }
    let t2 = schedule.next(t1).ok_or_else(too_close)?;
    if now < t2 {
        return Ok(Recent { most_recent: Some(t1), missed: Missed::None });
    }
    let gap = rounded_seconds(t2 - t1);
    if gap < 1 {
        return Err(too_close());
    }
    let missed_count = (now - t1).num_seconds() / gap + 1;
    let missed = if missed_count > 100 { Missed::Many } else { Missed::Few };
    // Walk the last times before now, starting a gap before the estimate. For a schedule
    // whose gaps differ (30 6-16/4 * * *) the estimate can overshoot, which would skip the
    // run in Kubernetes; here the start moves back, twice as far each time, until it finds
    // one (t1 at the latest).
    let mut back = 2;
    loop {
        let offset = (missed_count - back).saturating_mul(gap).max((earliest - t1).num_seconds() - 1);
        let start = earliest.max(t1 + Duration::seconds(offset));
        if let Some(found) = last_until(schedule, start, now) {
            return Ok(Recent { most_recent: Some(found), missed });
        }
        if start == earliest {
            return none(missed);
        }
        back = back.saturating_mul(2);
    }
}

/// The last time the schedule fires after `start` and at or before `now`.
fn last_until(schedule: &Schedule, start: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut found = None;
    let mut t = start;
    while let Some(next) = schedule.next(t).filter(|n| *n <= now) {
        found = Some(next);
        t = next;
    }
    found
}

/// A duration in whole seconds, halves rounded away from zero.
fn rounded_seconds(d: Duration) -> i64 {
    let millis = d.num_milliseconds();
    (millis + if millis >= 0 { 500 } else { -500 }) / 1000
}

/// The scheduled time to start a Job for now, if one is due, counting from `since` (the
/// last schedule time, else the creation time) within the starting deadline.
pub fn due(
    schedule: &Schedule,
    since: DateTime<Utc>,
    deadline: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(Option<DateTime<Utc>>, Missed), String> {
    let recent = most_recent(schedule, since, deadline, now)?;
    Ok((recent.most_recent, recent.missed))
}

/// How long until the next scheduled time after `since` (plus a little slack); None if it
/// never comes.
pub fn wait(schedule: &Schedule, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<std::time::Duration> {
    let from = match most_recent(schedule, since, None, now) {
        Ok(Recent { most_recent: Some(t), .. }) => t,
        Ok(Recent { missed: Missed::None, .. }) => since,
        Ok(_) | Err(_) => now,
    };
    let next = schedule.next(from)?;
    Some((next + WAKE_DELAY - now).to_std().unwrap_or(std::time::Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap()
    }

    fn every_minute() -> Schedule {
        cron::parse("* * * * *").unwrap()
    }

    #[test]
    fn nothing_due_before_the_first_time() {
        let created = at(10, 0, 30);
        assert_eq!(due(&every_minute(), created, None, at(10, 0, 59)), Ok((None, Missed::None)));
        assert_eq!(wait(&every_minute(), created, at(10, 0, 59)), Some(std::time::Duration::from_millis(1100)));
    }

    #[test]
    fn the_time_just_passed_is_due() {
        assert_eq!(due(&every_minute(), at(10, 0, 30), None, at(10, 1, 5)), Ok((Some(at(10, 1, 0)), Missed::None)));
        // Once it ran, the next is a minute later.
        let ran = at(10, 1, 0);
        assert_eq!(due(&every_minute(), ran, None, at(10, 1, 5)), Ok((None, Missed::None)));
        assert_eq!(wait(&every_minute(), ran, at(10, 1, 5)), Some(std::time::Duration::from_millis(55_100)));
    }

    #[test]
    fn only_the_most_recent_missed_time_runs() {
        let hourly = cron::parse("0 * * * *").unwrap();
        assert_eq!(due(&hourly, at(2, 0, 0), None, at(7, 10, 0)), Ok((Some(at(7, 0, 0)), Missed::Few)));
        // After missed times, the next wait is for the next time after now.
        assert_eq!(wait(&hourly, at(2, 0, 0), at(7, 10, 0)), Some(std::time::Duration::from_millis(50 * 60_000 + 100)));
        // An irregular schedule still finds its true most recent time.
        let irregular = cron::parse("30 6-16/4 * * *").unwrap();
        assert_eq!(due(&irregular, at(0, 0, 0), None, at(20, 0, 0)), Ok((Some(at(14, 30, 0)), Missed::Few)));
    }

    #[test]
    fn more_than_a_hundred_missed_is_many() {
        assert_eq!(due(&every_minute(), at(0, 0, 0), None, at(3, 0, 30)), Ok((Some(at(3, 0, 0)), Missed::Many)));
        // A starting deadline bounds how far back times count.
        assert_eq!(due(&every_minute(), at(0, 0, 0), Some(200), at(3, 0, 30)), Ok((Some(at(3, 0, 0)), Missed::Few)));
    }

    #[test]
    fn a_time_past_the_starting_deadline_is_not_due() {
        let hourly = cron::parse("0 * * * *").unwrap();
        assert_eq!(due(&hourly, at(1, 30, 0), Some(60), at(2, 5, 0)), Ok((None, Missed::None)));
        assert_eq!(due(&hourly, at(1, 30, 0), Some(60), at(2, 0, 30)), Ok((Some(at(2, 0, 0)), Missed::None)));
    }

    #[test]
    fn a_schedule_that_never_fires_is_an_error() {
        let never = cron::parse("0 0 30 2 *").unwrap();
        let err = due(&never, at(0, 0, 0), None, at(1, 0, 0)).unwrap_err();
        assert_eq!(err, "time difference between two schedules is less than 1 second");
        assert_eq!(wait(&never, at(0, 0, 0), at(1, 0, 0)), None);
    }
}
