//! Durations on the command line: `90s`, `2h`, `1h30m`, `250ms`.
//!
//! A duration is one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h` and `d`, each
//! unit at most once and from the largest to the smallest. No spaces, no fractions, no bare
//! numbers (a bare `90` could be seconds or minutes; the unit is required).
//!
//! ```
//! use std::time::Duration;
//! use cio_sync::duration::parse;
//!
//! assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
//! assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
//! assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
//! assert_eq!(parse("90").unwrap_err().to_string(), "`90`: the number 90 has no unit (ms, s, m, h or d)");
//! ```

use std::fmt;
use std::time::Duration;

/// A duration that cannot be read. Names the text and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}`: {problem}")]
pub struct DurationError {
    text: String,
    problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Empty,
    NoNumber(String),
    NoUnit(u64),
    UnknownUnit(String),
    Order(&'static str),
    TooLong,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => f.write_str("empty; write e.g. 90s, 2h or 1h30m"),
            Problem::NoNumber(at) => write!(f, "expected a whole number at `{at}`"),
            Problem::NoUnit(n) => write!(f, "the number {n} has no unit (ms, s, m, h or d)"),
            Problem::UnknownUnit(unit) => {
                write!(f, "unknown unit `{unit}` (use ms, s, m, h or d)")
            }
            Problem::Order(unit) => write!(
                f,
                "`{unit}` is repeated or out of order (largest unit first, each once)"
            ),
            Problem::TooLong => f.write_str("too long to represent"),
        }
    }
}

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Reads a duration (see the [module docs](self)).
///
/// # Errors
///
/// [`DurationError`] naming the text and the problem.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let fail = |problem| DurationError {
        text: text.to_owned(),
        problem,
    };
    if text.is_empty() {
        return Err(fail(Problem::Empty));
    }
    let mut rest = text;
    let mut millis: u64 = 0;
    let mut smallest_seen = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(fail(Problem::NoNumber(rest.to_owned())));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| fail(Problem::TooLong))?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if letters == 0 {
            return Err(fail(Problem::NoUnit(number)));
        }
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(fail(Problem::UnknownUnit(unit.to_owned())));
        };
        if smallest_seen != usize::MAX && index <= smallest_seen {
            return Err(fail(Problem::Order(UNITS[index].0)));
        }
        smallest_seen = index;
        millis = number
            .checked_mul(UNITS[index].1)
            .and_then(|part| millis.checked_add(part))
            .ok_or_else(|| fail(Problem::TooLong))?;
    }
    Ok(Duration::from_millis(millis))
}

/// Writes a duration the way [`parse`] reads it, largest unit first (`1h30m`, `250ms`, `0s`).
pub fn format(duration: Duration) -> String {
    let mut millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, size) in UNITS {
        if millis >= size {
            out.push_str(&format!("{}{name}", millis / size));
            millis %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_combinations() {
        for (text, millis) in [
            ("0s", 0),
            ("250ms", 250),
            ("90s", 90_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("7d", 604_800_000),
            ("1h30m", 5_400_000),
            ("1d2h3m4s5ms", 93_784_005),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_millis(millis)), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_ambiguous_or_malformed_and_says_why() {
        for (text, message) in [
            ("", "``: empty; write e.g. 90s, 2h or 1h30m"),
            ("90", "`90`: the number 90 has no unit (ms, s, m, h or d)"),
            ("h", "`h`: expected a whole number at `h`"),
            (
                "1.5h",
                "`1.5h`: the number 1 has no unit (ms, s, m, h or d)",
            ),
            ("10y", "`10y`: unknown unit `y` (use ms, s, m, h or d)"),
            (
                "30m1h",
                "`30m1h`: `h` is repeated or out of order (largest unit first, each once)",
            ),
            (
                "1s1s",
                "`1s1s`: `s` is repeated or out of order (largest unit first, each once)",
            ),
            ("1h ", "`1h `: expected a whole number at ` `"),
            (
                "99999999999999999999s",
                "`99999999999999999999s`: too long to represent",
            ),
            (
                "9999999999999999d",
                "`9999999999999999d`: too long to represent",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), message, "{text:?}");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in ["0s", "250ms", "90s", "1h30m", "1d2h3m4s5ms"] {
            let duration = parse(text).unwrap();
            assert_eq!(parse(&format(duration)), Ok(duration));
        }
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
    }
}
