//! Durations as Go's `time.ParseDuration` reads them, for `@every`: an optional sign, then
//! one or more decimal numbers each with a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), such
//! as `1h30m` or `1.5s`; `0` alone needs no unit. Errors are Go's.

use chrono::Duration;

const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(Duration::zero());
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (whole, after) = leading_digits(rest);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => leading_digits(after),
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration \"{text}\""));
        }
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| format!("time: unknown unit \"{unit}\" in duration \"{text}\""))?;
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
        nanos = nanos.checked_add(whole.checked_mul(scale).ok_or_else(invalid)?).ok_or_else(invalid)?;
        // Digits beyond what a nanosecond can hold do not change the result.
        let fraction = &fraction[..fraction.len().min(18)];
        if !fraction.is_empty() {
            let digits: u128 = fraction.parse().map_err(|_| invalid())?;
            nanos += digits * scale / 10u128.pow(fraction.len() as u32);
        }
        rest = after;
    }
    let nanos = i64::try_from(nanos).map_err(|_| invalid())?;
    Ok(Duration::nanoseconds(if negative { -nanos } else { nanos }))
}

fn leading_digits(text: &str) -> (&str, &str) {
    text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse("1.5s"), Ok(Duration::milliseconds(1500)));
        assert_eq!(parse(".5m"), Ok(Duration::seconds(30)));
        assert_eq!(parse("300ms"), Ok(Duration::milliseconds(300)));
        assert_eq!(parse("2µs"), Ok(Duration::microseconds(2)));
        assert_eq!(parse("-1m"), Ok(Duration::minutes(-1)));
        assert_eq!(parse("0"), Ok(Duration::zero()));
    }

    #[test]
    fn go_errors() {
        assert_eq!(parse(""), Err(r#"time: invalid duration """#.into()));
        assert_eq!(parse("1"), Err(r#"time: missing unit in duration "1""#.into()));
        assert_eq!(parse("5d"), Err(r#"time: unknown unit "d" in duration "5d""#.into()));
        assert_eq!(parse("h"), Err(r#"time: invalid duration "h""#.into()));
        assert_eq!(parse("1..5s"), Err(r#"time: missing unit in duration "1..5s""#.into()));
        assert_eq!(parse("9999999999h"), Err(r#"time: invalid duration "9999999999h""#.into()));
    }
}
