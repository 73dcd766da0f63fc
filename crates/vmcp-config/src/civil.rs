//! Civil time without dependencies: RFC 3339 parsing and formatting, fixed UTC offsets
//! (`+02:00`), and the proleptic Gregorian calendar (Howard Hinnant's day algorithms). The one
//! implementation behind the timestamps vmcp writes and the built-in clock server.

use std::time::{SystemTime, UNIX_EPOCH};

/// An instant: seconds and nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant {
    pub secs: i64,
    pub nanos: u32,
}

impl Instant {
    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Self { secs: d.as_secs() as i64, nanos: d.subsec_nanos() },
            Err(e) => Self { secs: -(e.duration().as_secs() as i64), nanos: 0 },
        }
    }
}

/// A fixed offset from UTC, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset(pub i32);

impl Offset {
    pub const UTC: Offset = Offset(0);

    /// `Z`, `UTC`, `+02:00`, `-0530`, `+2`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("gmt") {
            return Some(Self::UTC);
        }
        let sign = match s.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let rest = &s[1..];
        let (h, m) = match rest.split_once(':') {
            Some((h, m)) => (h, m),
            None if rest.len() == 4 => rest.split_at(2),
            None => (rest, "0"),
        };
        if h.is_empty() || h.len() > 2 || m.is_empty() || m.len() > 2 {
            return None;
        }
        let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(Self(sign * (h * 3600 + m * 60)))
    }

    /// `Z` for UTC, else `+HH:MM`.
    pub fn to_rfc3339(self) -> String {
        if self.0 == 0 {
            return "Z".into();
        }
        let sign = if self.0 < 0 { '-' } else { '+' };
        let a = self.0.abs();
        format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `Monday` .. `Sunday` of a day number.
pub fn weekday(days: i64) -> &'static str {
    const NAMES: [&str; 7] = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];
    NAMES[days.rem_euclid(7) as usize]
}

/// Now as RFC 3339 UTC to the second: `2026-11-21T19:20:00Z`.
pub fn now_utc() -> String {
    format(Instant { nanos: 0, ..Instant::now() }, Offset::UTC)
}

/// Now as RFC 3339 UTC with exactly three fraction digits, so that stamps sort as text:
/// `2026-05-01T12:34:56.789Z`.
pub fn now_utc_millis() -> String {
    format_utc_millis(Instant::now())
}

/// `t` as RFC 3339 UTC with exactly three fraction digits (truncated, not rounded).
pub fn format_utc_millis(t: Instant) -> String {
    format!("{}.{:03}Z", date_time(t.secs), t.nanos / 1_000_000)
}

/// Format `t` as RFC 3339 in `offset` (fraction only when non-zero).
pub fn format(t: Instant, offset: Offset) -> String {
    let mut out = date_time(t.secs + i64::from(offset.0));
    if t.nanos != 0 {
        let frac = format!("{:09}", t.nanos);
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(&offset.to_rfc3339());
    out
}

/// `YYYY-MM-DDTHH:MM:SS` of seconds since the epoch (already shifted to local time).
fn date_time(local: i64) -> String {
    let (days, sod) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// Parse `YYYY-MM-DD[T ]HH:MM[:SS[.frac]][offset]`; a missing offset is `default` (error if none).
pub fn parse(s: &str, default: Option<Offset>) -> Result<(Instant, Offset), String> {
    let s = s.trim();
    let bad = || format!("not an RFC 3339 time: `{s}` (expected e.g. 2026-03-01T14:05:00+02:00)");
    let (date, rest) = s.split_at_checked(10).ok_or_else(bad)?;
    let (y, m, d) = parse_date(date).ok_or_else(bad)?;
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
    let split = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(split);
    let (secs_of_day, nanos) = parse_clock(clock).ok_or_else(bad)?;
    let offset = if zone.is_empty() {
        default.ok_or_else(|| format!("`{s}` has no UTC offset: give one, e.g. `{s}+00:00`"))?
    } else {
        Offset::parse(zone).ok_or_else(bad)?
    };
    let local = days_from_civil(y, m, d) * 86_400 + secs_of_day;
    Ok((Instant { secs: local - i64::from(offset.0), nanos }, offset))
}

fn parse_date(date: &str) -> Option<(i64, u32, u32)> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = date[..4].parse().ok()?;
    let m: u32 = date[5..7].parse().ok()?;
    let d: u32 = date[8..].parse().ok()?;
    ((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)).then_some((y, m, d))
}

fn parse_clock(clock: &str) -> Option<(i64, u32)> {
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.split(':');
    let mut field = |max: i64| -> Option<i64> {
        let p = parts.next()?;
        let v: i64 = if p.len() == 2 { p.parse().ok()? } else { return None };
        (v <= max).then_some(v)
    };
    let (h, m) = (field(23)?, field(59)?);
    let s = if hms.len() > 5 { field(60)?.min(59) } else { 0 };
    if parts.next().is_some() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
    Some((h * 3600 + m * 60 + s, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip() {
        let cases =
            [((1970, 1, 1), 0), ((2000, 3, 1), 11_017), ((1969, 12, 31), -1), ((2024, 2, 29), 19_782)];
        for ((y, m, d), days) in cases {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(days), (y, m, d));
        }
        for z in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(weekday(0), "Thursday");
        assert_eq!(weekday(days_from_civil(2026, 7, 28)), "Tuesday");
    }

    #[test]
    fn offsets() {
        let cases = [
            ("Z", Some(0)),
            ("+02:00", Some(7200)),
            ("-05:30", Some(-19_800)),
            ("+0545", Some(20_700)),
            ("+2", Some(7200)),
            ("+24:00", None),
            ("02:00", None),
            ("+1:2:3", None),
        ];
        for (text, secs) in cases {
            assert_eq!(Offset::parse(text).map(|o| o.0), secs, "{text}");
        }
        assert_eq!(Offset(-19_800).to_rfc3339(), "-05:30");
    }

    #[test]
    fn parses_and_formats_rfc3339() {
        let cases = [
            ("2026-03-01T14:05:09+02:00", None, "2026-03-01T12:05:09Z"),
            ("2026-03-01 00:30:00-01:00", None, "2026-03-01T01:30:00Z"),
            ("1969-12-31T23:59:59.25Z", None, "1969-12-31T23:59:59.25Z"),
            ("2024-02-29T10:00", Some(Offset(3600)), "2024-02-29T09:00:00Z"),
        ];
        for (text, default, utc) in cases {
            let (t, _) = parse(text, default).unwrap();
            assert_eq!(format(t, Offset::UTC), utc, "{text}");
        }
        for bad in ["2026-02-30T00:00:00Z", "2026-03-01", "2026-03-01T25:00Z", "2026-03-01T10:00:00", "x"] {
            assert!(parse(bad, None).is_err(), "{bad}");
        }
        let (t, _) = parse("2026-12-31T23:30:00Z", None).unwrap();
        assert_eq!(format(t, Offset::parse("+01:00").unwrap()), "2027-01-01T00:30:00+01:00");
    }

    #[test]
    fn formats_known_instants_in_utc() {
        let secs = |secs: i64| format(Instant { secs, nanos: 0 }, Offset::UTC);
        assert_eq!(secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(secs(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(secs(1_795_288_800), "2026-11-21T19:20:00Z");
        let millis = |secs: i64, ms: u32| format_utc_millis(Instant { secs, nanos: ms * 1_000_000 + 999 });
        assert_eq!(millis(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(millis(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(millis(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(millis(4_102_444_800, 0), "2100-01-01T00:00:00.000Z");
    }
}
