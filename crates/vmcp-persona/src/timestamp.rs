//! Persona timestamps: RFC 3339 UTC with milliseconds (`2026-05-01T12:34:56.789Z`), from
//! `vmcp_config::civil`, and the spans (`30d`) a key's lifetime is given in.

use vmcp_config::civil;

pub use vmcp_config::civil::now_utc_millis as now;

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> i64 {
    millis(civil::Instant::now())
}

/// Milliseconds since the Unix epoch of an RFC 3339 time with an explicit offset.
pub(crate) fn parse_millis(s: &str) -> Result<i64, String> {
    civil::parse(s, None).map(|(t, _)| millis(t))
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds.
pub(crate) fn format_millis(ms: i64) -> String {
    let nanos = (ms.rem_euclid(1000) * 1_000_000) as u32;
    civil::format_utc_millis(civil::Instant { secs: ms.div_euclid(1000), nanos })
}

fn millis(t: civil::Instant) -> i64 {
    t.secs.saturating_mul(1000).saturating_add(i64::from(t.nanos / 1_000_000))
}

/// The longest span accepted: about 100 years.
const MAX_SPAN_SECS: u64 = 100 * 366 * 86_400;

/// A positive span: a whole number and a unit, `s`, `m`, `h`, `d` or `w` (`90m`, `30d`), in
/// seconds.
pub(crate) fn parse_span(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a span: use a number and a unit, e.g. 90m, 12h, 30d or 2w");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(unit_secs) {
        Some(0) => Err(format!("`{s}`: the span must be longer than zero")),
        Some(secs) if secs <= MAX_SPAN_SECS => Ok(secs),
        _ => Err(format!("`{s}`: the span is longer than 100 years")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_take_a_number_and_one_unit() {
        for (text, secs) in
            [("45s", 45), ("90m", 5400), ("12h", 43_200), ("30d", 2_592_000), ("2w", 1_209_600)]
        {
            assert_eq!(parse_span(text), Ok(secs), "{text}");
        }
        for bad in ["", "30", "d", "0d", "-1d", "1.5h", "30 d", "30D", "1y", "3dd", "99999999999999999999d"] {
            assert!(parse_span(bad).is_err(), "`{bad}` must be refused");
        }
        assert!(parse_span("36600d").is_ok() && parse_span("36700d").is_err(), "at most about 100 years");
    }

    #[test]
    fn times_round_trip_through_milliseconds() {
        let ms = parse_millis("2026-03-01T14:05:00.25+02:00").unwrap();
        assert_eq!(format_millis(ms), "2026-03-01T12:05:00.250Z");
        assert_eq!(parse_millis(&format_millis(ms)), Ok(ms));
        assert_eq!(format_millis(-1), "1969-12-31T23:59:59.999Z");
        assert!(parse_millis("2026-03-01T14:05:00").is_err(), "an offset is required");
        assert!(parse_millis("next tuesday").is_err());
    }
}
