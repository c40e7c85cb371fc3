//! Byte sizes and rates in human units: parsing `512KiB/s` or `10MB/s`, printing `1.50 MiB/s`.

use std::fmt;
use std::str::FromStr;

/// A transfer rate in bytes per second, as given on the command line.
///
/// Accepted forms: a number (integer or decimal) followed by an optional unit and an optional
/// `/s`: `B`, SI `K`/`KB`, `M`/`MB`, `G`/`GB` (powers of 1000) or binary `KiB`, `MiB`, `GiB`
/// (powers of 1024). Units are case-insensitive. The rate must be at least 1 byte per second.
///
/// `Display` prints the exact value in the largest binary unit that divides it (`2MiB/s`,
/// `1500B/s`), so a printed rate parses back to the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteRate(u64);

impl ByteRate {
    /// A rate of `bytes_per_sec` (at least 1).
    pub fn new(bytes_per_sec: u64) -> Option<ByteRate> {
        (bytes_per_sec > 0).then_some(ByteRate(bytes_per_sec))
    }

    /// Bytes per second.
    pub fn bytes_per_sec(self) -> u64 {
        self.0
    }
}

/// Why a rate string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateError {
    /// Nothing was given.
    Empty,
    /// The number part is missing or not a number.
    BadNumber(String),
    /// The unit is not one of the known ones.
    BadUnit(String),
    /// The rate is zero.
    Zero,
    /// The rate does not fit 64 bits.
    TooLarge,
}

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HINT: &str = "expected e.g. 512KiB/s, 10MB/s or 2000000";
        match self {
            RateError::Empty => write!(f, "empty rate ({HINT})"),
            RateError::BadNumber(s) => write!(f, "`{s}` is not a number ({HINT})"),
            RateError::BadUnit(s) => write!(
                f,
                "unknown unit `{s}` (use B, KB, MB, GB, KiB, MiB or GiB, optionally with /s)"
            ),
            RateError::Zero => f.write_str("a rate must be more than 0 bytes per second"),
            RateError::TooLarge => f.write_str("rate too large"),
        }
    }
}

impl std::error::Error for RateError {}

fn multiplier(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        _ => return None,
    })
}

impl FromStr for ByteRate {
    type Err = RateError;

    fn from_str(s: &str) -> Result<Self, RateError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(RateError::Empty);
        }
        let body = s
            .strip_suffix("/s")
            .or_else(|| s.strip_suffix("/S"))
            .unwrap_or(s);
        let split = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, unit) = body.split_at(split);
        let unit = unit.trim();
        let mult = multiplier(unit).ok_or_else(|| RateError::BadUnit(unit.to_string()))?;
        let value = parse_scaled(number, mult)?;
        ByteRate::new(value).ok_or(RateError::Zero)
    }
}

/// `number * mult`, exactly for integers and rounded to the nearest byte for decimals.
fn parse_scaled(number: &str, mult: u64) -> Result<u64, RateError> {
    let bad = || RateError::BadNumber(number.to_string());
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(bad());
    }
    let whole: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut value = whole
        .checked_mul(u128::from(mult))
        .ok_or(RateError::TooLarge)?;
    if !frac.is_empty() {
        // At most 18 fraction digits matter for a 64-bit result.
        let digits = &frac[..frac.len().min(18)];
        let numerator: u128 = digits.parse().map_err(|_| bad())?;
        let denominator = 10u128.pow(digits.len() as u32);
        value += (numerator * u128::from(mult) + denominator / 2) / denominator;
    }
    u64::try_from(value).map_err(|_| RateError::TooLarge)
}

impl fmt::Display for ByteRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if self.0 % size == 0 {
                return write!(f, "{}{unit}/s", self.0 / size);
            }
        }
        write!(f, "{}B/s", self.0)
    }
}

/// A byte count with a binary unit and two decimals at most: `12.00 MiB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size {
            return format!("{:.2} {unit}", b / size as f64);
        }
    }
    format!("{bytes} B")
}

/// A rate with a binary unit: `1.50 MiB/s`.
pub fn human_rate(bytes_per_sec: f64) -> String {
    format!("{}/s", human_bytes(bytes_per_sec.max(0.0).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rate(s: &str) -> Result<u64, RateError> {
        s.parse::<ByteRate>().map(ByteRate::bytes_per_sec)
    }

    #[test]
    fn units_follow_si_and_iec() {
        assert_eq!(rate("512KiB/s"), Ok(512 * 1024));
        assert_eq!(rate("10MB/s"), Ok(10_000_000));
        assert_eq!(rate("2MiB/s"), Ok(2 << 20));
        assert_eq!(rate("2mib"), Ok(2 << 20));
        assert_eq!(rate("1G/s"), Ok(1_000_000_000));
        assert_eq!(rate("1GiB/s"), Ok(1 << 30));
        assert_eq!(rate("1500"), Ok(1500));
        assert_eq!(rate("1500B/s"), Ok(1500));
        assert_eq!(rate(" 64 KiB/s "), Ok(64 * 1024));
    }

    #[test]
    fn decimals_round_to_the_nearest_byte() {
        assert_eq!(rate("1.5MiB/s"), Ok(3 << 19));
        assert_eq!(rate("0.5KB"), Ok(500));
        assert_eq!(rate(".25KiB/s"), Ok(256));
        assert_eq!(rate("1.0005KB"), Ok(1001));
    }

    #[test]
    fn bad_strings_are_rejected_with_a_reason() {
        assert_eq!(rate(""), Err(RateError::Empty));
        assert_eq!(rate("fast"), Err(RateError::BadUnit("fast".into())));
        assert_eq!(rate("10XB/s"), Err(RateError::BadUnit("XB".into())));
        assert_eq!(rate("MiB/s"), Err(RateError::BadNumber(String::new())));
        assert_eq!(rate("1.2.3MB"), Err(RateError::BadNumber("1.2.3".into())));
        assert_eq!(rate("."), Err(RateError::BadNumber(".".into())));
        assert_eq!(rate("0KiB/s"), Err(RateError::Zero));
        assert_eq!(rate("0.0001B"), Err(RateError::Zero));
        assert_eq!(rate("-5MB"), Err(RateError::BadUnit("-5MB".into())));
        assert_eq!(rate("99999999999GiB/s"), Err(RateError::TooLarge));
        assert!(RateError::BadUnit("x".into()).to_string().contains("KiB"));
    }

    #[test]
    fn display_picks_the_largest_exact_unit() {
        assert_eq!(ByteRate(2 << 20).to_string(), "2MiB/s");
        assert_eq!(ByteRate(512 * 1024).to_string(), "512KiB/s");
        assert_eq!(ByteRate(1500).to_string(), "1500B/s");
        assert_eq!(human_bytes(3 << 19), "1.50 MiB");
        assert_eq!(human_bytes(100), "100 B");
        assert_eq!(human_rate(768.0 * 1024.0), "768.00 KiB/s");
    }

    proptest! {
        #[test]
        fn display_parses_back_to_the_same_rate(n in 1u64..=u64::MAX) {
            let r = ByteRate(n);
            prop_assert_eq!(r.to_string().parse::<ByteRate>(), Ok(r));
        }

        #[test]
        fn every_unit_scales_exactly(
            n in 1u64..1_000_000,
            unit in prop::sample::select(vec![
                ("B", 1u64), ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000),
                ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("kib", 1 << 10),
            ]),
            per_second in any::<bool>(),
        ) {
            let text = format!("{n}{}{}", unit.0, if per_second { "/s" } else { "" });
            prop_assert_eq!(rate(&text), Ok(n * unit.1));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,24}") {
            let _ = s.parse::<ByteRate>();
        }
    }
}
