//! Kubernetes resource quantities (`100m`, `0.5`, `128Mi`, `1G`, `1e3`): parsed into
//! thousandths, added, compared, and written back in Kubernetes' canonical form, keeping
//! the notation (binary, decimal or exponent) of the quantity they came from, as
//! `resource.Quantity` does.

use std::fmt;

/// Parses a Kubernetes quantity into thousandths, rounding anything finer up as Kubernetes
/// rounds it.
pub fn milli(quantity: &str) -> Option<i128> {
    let q = quantity.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let negative = whole.starts_with('-');
    let whole: i128 = whole.trim_start_matches(['-', '+']).parse().unwrap_or(0);
    // Thousandths of the number itself, rounded up as Kubernetes rounds.
    let frac_digits: String = frac.chars().take(9).collect();
    let frac_milli = if frac_digits.is_empty() {
        0
    } else {
        let scale = 10i128.pow(frac_digits.len() as u32);
        let f: i128 = frac_digits.parse().ok()?;
        (f * 1000 + scale - 1) / scale
    };
    let base = whole * 1000 + frac_milli;
    let scaled = match suffix {
        "" => base,
        "m" => (base + 999) / 1000,
        "k" => base * 1_000,
        "M" => base * 1_000_000,
        "G" => base * 1_000_000_000,
        "T" => base * 1_000_000_000_000,
        "P" => base * 1_000_000_000_000_000,
        "E" => base * 1_000_000_000_000_000_000,
        "Ki" => base << 10,
        "Mi" => base << 20,
        "Gi" => base << 30,
        "Ti" => base << 40,
        "Pi" => base << 50,
        "Ei" => base << 60,
        s if s.starts_with(['e', 'E']) => base * 10i128.checked_pow(s[1..].parse().ok()?)?,
        _ => return None,
    };
    Some(if negative { -scaled } else { scaled })
}

/// How a quantity is written: Kubernetes keeps the notation it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Notation {
    /// `m`, `k`, `M`, `G`, ... (and plain numbers).
    #[default]
    DecimalSI,
    /// `Ki`, `Mi`, `Gi`, ...
    BinarySI,
    /// `1e3`.
    DecimalExponent,
}

/// A quantity: its value in thousandths and the notation it is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amount {
    pub milli: i128,
    pub notation: Notation,
}

impl Amount {
    pub fn parse(quantity: &str) -> Option<Amount> {
        let suffix =
            quantity.trim().trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-' || c == '+');
        let notation = if suffix.ends_with('i') {
            Notation::BinarySI
        } else if suffix.starts_with(['e', 'E']) {
            Notation::DecimalExponent
        } else {
            Notation::DecimalSI
        };
        Some(Amount { milli: milli(quantity)?, notation })
    }

    /// A whole number (an object count), written in decimal.
    pub fn count(n: i64) -> Amount {
        Amount { milli: n as i128 * 1000, notation: Notation::DecimalSI }
    }

    /// The sum, in this amount's notation (a zero amount takes the other's, as a sum that
    /// starts from nothing does in Kubernetes).
    pub fn plus(self, other: Amount) -> Amount {
        let notation = if self == Amount::default() { other.notation } else { self.notation };
        Amount { milli: self.milli + other.milli, notation }
    }

    pub fn minus(self, other: Amount) -> Amount {
        Amount { milli: self.milli - other.milli, notation: self.notation }
    }
}

/// Writes `milli` thousandths in decimal notation with the largest suffix that keeps the
/// number whole (`1500m`, `2`, `3k`).
fn write_decimal(f: &mut fmt::Formatter<'_>, milli: i128, exponent_notation: bool) -> fmt::Result {
    const SUFFIXES: [&str; 8] = ["m", "", "k", "M", "G", "T", "P", "E"];
    let (mut mantissa, mut step) = (milli, 0);
    while mantissa != 0 && mantissa % 1000 == 0 && step + 1 < SUFFIXES.len() {
        mantissa /= 1000;
        step += 1;
    }
    if mantissa == 0 {
        return write!(f, "0");
    }
    if exponent_notation {
        let exponent = 3 * step as i32 - 3;
        return if exponent == 0 { write!(f, "{mantissa}") } else { write!(f, "{mantissa}e{exponent}") };
    }
    write!(f, "{mantissa}{}", SUFFIXES[step])
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.milli % 1000 == 0;
        let units = self.milli / 1000;
        // Binary suffixes only for whole amounts of at least 1Ki; anything else is decimal.
        if self.notation == Notation::BinarySI && whole && units.abs() >= 1024 {
            const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
            let (mut mantissa, mut step) = (units, 0);
            while mantissa % 1024 == 0 && step + 1 < SUFFIXES.len() {
                mantissa /= 1024;
                step += 1;
            }
            return write!(f, "{mantissa}{}", SUFFIXES[step]);
        }
        write_decimal(f, self.milli, self.notation == Notation::DecimalExponent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_to_thousandths() {
        assert_eq!(milli("100m"), Some(100));
        assert_eq!(milli("0.5"), Some(500));
        assert_eq!(milli("2"), Some(2000));
        assert_eq!(milli("1Ki"), Some(1024 * 1000));
        assert_eq!(milli("128Mi"), Some(128 * 1024 * 1024 * 1000));
        assert_eq!(milli("1G"), Some(1_000_000_000_000));
        assert_eq!(milli("1e3"), Some(1_000_000));
        assert_eq!(milli("1.5Gi"), Some(1536 * 1024 * 1024 * 1000));
        assert_eq!(milli("bogus"), None);
    }

    fn canonical(q: &str) -> String {
        Amount::parse(q).unwrap().to_string()
    }

    #[test]
    fn quantities_are_written_as_kubernetes_writes_them() {
        assert_eq!(canonical("0.5"), "500m");
        assert_eq!(canonical("1000m"), "1");
        assert_eq!(canonical("2000"), "2k");
        assert_eq!(canonical("1024Mi"), "1Gi");
        assert_eq!(canonical("1536Mi"), "1536Mi");
        assert_eq!(canonical("0.5Ki"), "512");
        assert_eq!(canonical("1e3"), "1e3");
        assert_eq!(canonical("0"), "0");
        assert_eq!(canonical("0Mi"), "0");
    }

    #[test]
    fn sums_keep_the_first_notation() {
        let sum = Amount::default().plus(Amount::parse("512Mi").unwrap()).plus(Amount::parse("0.5Gi").unwrap());
        assert_eq!(sum.to_string(), "1Gi");
        assert_eq!(Amount::parse("250m").unwrap().plus(Amount::parse("1").unwrap()).to_string(), "1250m");
    }
}
