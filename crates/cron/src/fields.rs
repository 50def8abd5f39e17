//! The five fields of a standard cron line, each read into the set of values it allows (a
//! bit per value). A field is a comma-separated list of `*` or `?`, `N`, `N-M`, each with an
//! optional `/step`; `N/step` runs from N to the field's maximum. Months and days of the week
//! may be named (`jan`, `sun`, in any case). Errors are robfig/cron's, word for word.

/// Set when a field was `*` or `?` (without a step above 1): a day-of-month or day-of-week
/// field that is a star does not widen the other to "either may match".
const STAR: u64 = 1 << 63;

struct Bounds {
    min: u64,
    max: u64,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds { min: 0, max: 59, names: &[] };
const HOURS: Bounds = Bounds { min: 0, max: 23, names: &[] };
const DAYS_OF_MONTH: Bounds = Bounds { min: 1, max: 31, names: &[] };
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
};
const DAYS_OF_WEEK: Bounds = Bounds { min: 0, max: 6, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] };

/// The values each field allows.
#[derive(Clone, Debug, PartialEq)]
pub struct Fields {
    minute: u64,
    hour: u64,
    day_of_month: u64,
    month: u64,
    day_of_week: u64,
}

impl Fields {
    pub fn parse(spec: &str) -> Result<Fields, String> {
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
        }
        Ok(Fields {
            minute: field(fields[0], &MINUTES)?,
            hour: field(fields[1], &HOURS)?,
            day_of_month: field(fields[2], &DAYS_OF_MONTH)?,
            month: field(fields[3], &MONTHS)?,
            day_of_week: field(fields[4], &DAYS_OF_WEEK)?,
        })
    }

    pub fn minute(&self, minute: u32) -> bool {
        has(self.minute, minute)
    }

    pub fn hour(&self, hour: u32) -> bool {
        has(self.hour, hour)
    }

    pub fn month(&self, month: u32) -> bool {
        has(self.month, month)
    }

    /// Whether a day matches: both day fields must when either is a star; otherwise either
    /// may (`0 0 1,15 * mon` fires on the 1st, the 15th and every Monday), as in Vixie cron.
    pub fn day(&self, day_of_month: u32, days_from_sunday: u32) -> bool {
        let by_month = has(self.day_of_month, day_of_month);
        let by_week = has(self.day_of_week, days_from_sunday);
        if (self.day_of_month | self.day_of_week) & STAR != 0 { by_month && by_week } else { by_month || by_week }
    }
}

fn has(bits: u64, value: u32) -> bool {
    bits & (1 << value) != 0
}

/// A list of ranges; empty elements (`1,,2`) are skipped.
fn field(text: &str, bounds: &Bounds) -> Result<u64, String> {
    text.split(',').filter(|r| !r.is_empty()).try_fold(0, |bits, r| Ok(bits | range(r, bounds)?))
}

fn range(expr: &str, bounds: &Bounds) -> Result<u64, String> {
    let mut range_and_step = expr.split('/');
    let span = range_and_step.next().unwrap_or_default();
    let step = range_and_step.next();
    if range_and_step.next().is_some() {
        return Err(format!("too many slashes: {expr}"));
    }
    let ends: Vec<&str> = span.split('-').collect();
    let (mut start, mut end, mut star) = if ends[0] == "*" || ends[0] == "?" {
        (bounds.min, bounds.max, STAR)
    } else {
        let start = number_or_name(ends[0], bounds)?;
        let end = match ends.len() {
            1 => start,
            2 => number_or_name(ends[1], bounds)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end, 0)
    };
    let step = match step {
        None => 1,
        Some(step) => {
            let step = number(step)?;
            if ends.len() == 1 {
                end = bounds.max;
            }
            if step > 1 {
                star = 0;
            }
            step
        }
    };
    if start < bounds.min {
        return Err(format!("beginning of range ({start}) below minimum ({}): {expr}", bounds.min));
    }
    if end > bounds.max {
        return Err(format!("end of range ({end}) above maximum ({}): {expr}", bounds.max));
    }
    if start > end {
        return Err(format!("beginning of range ({start}) beyond end of range ({end}): {expr}"));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = star;
    while start <= end {
        bits |= 1 << start;
        start += step.min(64);
    }
    Ok(bits)
}

fn number_or_name(expr: &str, bounds: &Bounds) -> Result<u64, String> {
    let lower = expr.to_ascii_lowercase();
    match bounds.names.iter().position(|n| *n == lower) {
        // Names count from the field's minimum: jan is 1, sun is 0.
        Some(i) => Ok(bounds.min + i as u64),
        None => number(expr),
    }
}

/// A non-negative integer as Go's `strconv.Atoi` reads it (an optional sign, then digits).
fn number(expr: &str) -> Result<u64, String> {
    let atoi = |why: &str| format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: {why}");
    let (negative, digits) = match expr.as_bytes().first() {
        Some(b'-') => (true, &expr[1..]),
        Some(b'+') => (false, &expr[1..]),
        _ => (false, expr),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(atoi("invalid syntax"));
    }
    let value: u64 = digits.parse().ok().filter(|v| *v <= i64::MAX as u64).ok_or_else(|| atoi("value out of range"))?;
    if negative && value > 0 {
        return Err(format!("negative number (-{value}) not allowed: {expr}"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(bits: u64) -> Vec<u32> {
        (0..63).filter(|v| has(bits, *v)).collect()
    }

    fn parse(spec: &str) -> Fields {
        Fields::parse(spec).unwrap()
    }

    #[test]
    fn ranges_steps_lists_and_names() {
        let f = parse("*/15 9-17 1,15 jan-MAR,dec mon-fri");
        assert_eq!(values(f.minute), vec![0, 15, 30, 45]);
        assert_eq!(values(f.hour), (9..=17).collect::<Vec<_>>());
        assert_eq!(values(f.day_of_month), vec![1, 15]);
        assert_eq!(values(f.month), vec![1, 2, 3, 12]);
        assert_eq!(values(f.day_of_week), vec![1, 2, 3, 4, 5]);
        assert_eq!(values(parse("5/20 * * * *").minute), vec![5, 25, 45]);
        assert_eq!(values(parse("10-30/10 * * * *").minute), vec![10, 20, 30]);
        assert_eq!(values(parse("1,,2 * * * *").minute), vec![1, 2]);
        assert_eq!(values(parse("+5 * * * *").minute), vec![5]);
        assert_eq!(values(parse("* * ? * SUN").day_of_week), vec![0]);
    }

    #[test]
    fn a_star_keeps_both_day_fields_required() {
        // Neither is a star: either matches.
        let either = parse("0 0 1 * mon");
        assert!(either.day(1, 3) && either.day(9, 1) && !either.day(9, 3));
        // Day of week is a star: the day of month decides.
        let monthly = parse("0 0 1 * *");
        assert!(monthly.day(1, 3) && !monthly.day(2, 3));
        // A star with a step is no longer a star.
        let stepped = parse("0 0 */2 * mon");
        assert!(stepped.day(3, 3) && stepped.day(2, 1) && !stepped.day(2, 3));
        // A star with step 1 still is.
        let one = parse("0 0 */1 * mon");
        assert!(one.day(2, 1) && !one.day(3, 3));
    }

    #[test]
    fn errors_as_kubernetes_shows_them() {
        let err = |spec: &str| Fields::parse(spec).unwrap_err();
        assert_eq!(err("* * * *"), "expected exactly 5 fields, found 4: [* * * *]");
        assert_eq!(err("0 0 * * * *"), "expected exactly 5 fields, found 6: [0 0 * * * *]");
        assert_eq!(err("60 * * * *"), "end of range (60) above maximum (59): 60");
        assert_eq!(err("* 24 * * *"), "end of range (24) above maximum (23): 24");
        assert_eq!(err("* * 0 * *"), "beginning of range (0) below minimum (1): 0");
        assert_eq!(err("* * * 13 *"), "end of range (13) above maximum (12): 13");
        assert_eq!(err("* * * * 7"), "end of range (7) above maximum (6): 7");
        assert_eq!(err("5-1 * * * *"), "beginning of range (5) beyond end of range (1): 5-1");
        assert_eq!(err("*/0 * * * *"), "step of range should be a positive number: */0");
        assert_eq!(err("1-2-3 * * * *"), "too many hyphens: 1-2-3");
        assert_eq!(err("*/2/3 * * * *"), "too many slashes: */2/3");
        assert_eq!(err("x * * * *"), r#"failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax"#);
        assert_eq!(err("1- * * * *"), r#"failed to parse int from : strconv.Atoi: parsing "": invalid syntax"#);
        assert_eq!(err("*/-1 * * * *"), "negative number (-1) not allowed: -1");
        assert_eq!(
            err("99999999999999999999 * * * *"),
            r#"failed to parse int from 99999999999999999999: strconv.Atoi: parsing "99999999999999999999": value out of range"#
        );
        assert_eq!(err("* * * * L"), r#"failed to parse int from L: strconv.Atoi: parsing "L": invalid syntax"#);
    }
}
