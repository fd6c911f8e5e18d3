//! Time as Reprieve sees it: Unix seconds (UTC), durations like `14d`, and the few calendar facts features need.
//!
//! Kept dependency-free on purpose: the civil-date conversions are the well-known days-from-civil algorithms.

use crate::error::ParseError;

/// Seconds since 1970-01-01T00:00:00Z.
pub type UnixSeconds = i64;

pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;
pub const WEEK: i64 = 7 * DAY;

/// Parses a duration: an integer followed by `s`, `m`, `h`, `d` or `w` (`90s`, `12h`, `14d`, `2w`).
pub fn parse_duration(text: &str) -> Result<i64, ParseError> {
    let t = text.trim();
    let err = || {
        ParseError::new(
            "duration",
            text,
            "expected a whole number and a unit s/m/h/d/w, e.g. 14d",
        )
    };
    let unit_at = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (digits, unit) = t.split_at(unit_at);
    let n: i64 = digits.parse().map_err(|_| err())?;
    let scale = match unit {
        "s" => 1,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => WEEK,
        _ => return Err(err()),
    };
    let secs = n.checked_mul(scale).ok_or_else(err)?;
    if secs <= 0 {
        return Err(ParseError::new("duration", text, "must be positive"));
    }
    Ok(secs)
}

/// Formats seconds as the largest exact unit (`14d`, `12h`, `90s`).
pub fn format_duration(secs: i64) -> String {
    for (unit, scale) in [("w", WEEK), ("d", DAY), ("h", HOUR), ("m", MINUTE)] {
        if secs != 0 && secs % scale == 0 {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Calendar year of a Unix time.
pub fn year_of(t: UnixSeconds) -> i64 {
    civil_from_days(t.div_euclid(DAY)).0
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = name.to_ascii_lowercase();
    MONTHS.iter().position(|m| *m == lower).map(|i| i as u32 + 1)
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn offset_seconds(text: &str) -> Option<i64> {
    // "+hhmm", "-hh:mm", "Z"
    if text == "Z" || text == "z" {
        return Some(0);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest: String = text[1..].chars().filter(|c| *c != ':').collect();
    if rest.len() != 4 {
        return None;
    }
    let h: i64 = digits(&rest[..2])?;
    let m: i64 = digits(&rest[2..])?;
    Some(sign * (h * HOUR + m * MINUTE))
}

fn checked_civil(year: i64, month: u32, day: u32, h: i64, mi: i64, s: i64) -> Option<UnixSeconds> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * DAY + h * HOUR + mi * MINUTE + s)
}

/// Parses an RFC 3339 / ISO 8601 time (`2024-05-12T10:00:00Z`, `2024-05-12 10:00:00+02:00`, fractional
/// seconds ignored, a bare date `2024-05-12` is midnight UTC, no offset means UTC).
pub fn parse_rfc3339(text: &str) -> Option<UnixSeconds> {
    let t = text.trim();
    // The format is ASCII; checking first also keeps the byte-offset slicing below on character boundaries.
    if !t.is_ascii() {
        return None;
    }
    let b = t.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i64 = digits(&t[..4])?;
    let month: u32 = digits(&t[5..7])?;
    let day: u32 = digits(&t[8..10])?;
    if b.len() == 10 {
        return checked_civil(year, month, day, 0, 0, 0);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let h: i64 = digits(&t[11..13])?;
    let mi: i64 = digits(&t[14..16])?;
    let s: i64 = digits(&t[17..19])?;
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac.find(|c: char| !c.is_ascii_digit()).unwrap_or(frac.len());
        if end == 0 {
            return None;
        }
        rest = &frac[end..];
    }
    let offset = if rest.is_empty() {
        0
    } else {
        offset_seconds(rest.trim())?
    };
    Some(checked_civil(year, month, day, h, mi, s)? - offset)
}

/// Parses the Common Log Format time `10/Oct/2000:13:55:36 -0700` (brackets already removed).
pub fn parse_clf_time(text: &str) -> Option<UnixSeconds> {
    let t = text.trim();
    let (stamp, zone) = match t.split_once(' ') {
        Some((s, z)) => (s, Some(z)),
        None => (t, None),
    };
    let mut parts = stamp.splitn(4, [':', '/']);
    let day: u32 = digits(parts.next()?)?;
    let month = month_number(parts.next()?)?;
    let year: i64 = digits(parts.next()?)?;
    let clock = parts.next()?;
    let mut hms = clock.split(':');
    let h: i64 = digits(hms.next()?)?;
    let mi: i64 = digits(hms.next()?)?;
    let s: i64 = digits(hms.next()?)?;
    if hms.next().is_some() {
        return None;
    }
    let offset = match zone {
        Some(z) => offset_seconds(z.trim())?,
        None => 0,
    };
    Some(checked_civil(year, month, day, h, mi, s)? - offset)
}

/// Parses a time given on a command line or in a file: Unix seconds (`1715500000`), RFC 3339, or a date.
pub fn parse_time(text: &str) -> Result<UnixSeconds, ParseError> {
    let t = text.trim();
    if let Some(v) = digits::<i64>(t.strip_prefix('-').unwrap_or(t)) {
        return Ok(if t.starts_with('-') { -v } else { v });
    }
    parse_rfc3339(t).ok_or_else(|| {
        ParseError::new(
            "time",
            text,
            "expected Unix seconds or an RFC 3339 time such as 2024-05-12T10:00:00Z",
        )
    })
}

/// Formats a Unix time as RFC 3339 UTC (`2024-05-12T10:00:00Z`).
pub fn format_rfc3339(t: UnixSeconds) -> String {
    let days = t.div_euclid(DAY);
    let secs = t.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / HOUR,
        (secs % HOUR) / MINUTE,
        secs % MINUTE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_times_are_refused_not_a_panic() {
        for text in [
            "2024-01-01T00:00:0\u{e9}",
            "2024-01-01T00:0\u{e9}:00Z",
            "2024-0\u{e9}-01",
            "\u{e9}\u{e9}\u{e9}\u{e9}-01-01",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
            assert!(parse_time(text).is_err(), "{text}");
            assert_eq!(parse_clf_time(text), None, "{text}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 59, 365, 10_957, 19_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn parses_times() {
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), Some(DAY));
        assert_eq!(parse_rfc3339("2024-05-12T10:00:00.123+02:00"), Some(1_715_500_800));
        assert_eq!(parse_rfc3339("2024-05-12"), Some(1_715_472_000));
        assert_eq!(parse_clf_time("01/Jul/1995:00:00:01 -0400"), Some(804_571_201));
        assert_eq!(parse_clf_time("17/May/2015:10:05:03 +0000"), Some(1_431_857_103));
        assert_eq!(parse_time("1715500000").ok(), Some(1_715_500_000));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_rfc3339("2024-13-12").is_none());
        assert_eq!(format_rfc3339(1_715_500_800), "2024-05-12T08:00:00Z");
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("14d").ok(), Some(14 * DAY));
        assert_eq!(parse_duration("12h").ok(), Some(12 * HOUR));
        assert_eq!(parse_duration("2w").ok(), Some(2 * WEEK));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("5y").is_err());
        assert_eq!(format_duration(14 * DAY), "2w");
        assert_eq!(format_duration(13 * DAY), "13d");
    }
}
