//! CronJob schedules: the five-field cron syntax Kubernetes accepts (with names, ranges, steps, lists and the
//! `@hourly`/`@daily`/`@weekly`/`@monthly`/`@yearly` macros), and when the next runs are.
//!
//! Times are UTC. A `CRON_TZ=`/`TZ=` prefix or a CronJob's `timeZone` is recorded but not applied (no time zone
//! database here), so a next run may be off by the zone's offset; the report says so. As in Vixie cron, when both
//! day-of-month and day-of-week are restricted a day matching either runs.

use reprieve_core::UnixSeconds;
use reprieve_core::time::{DAY, civil_from_days};

/// A parsed schedule: bit sets of the allowed minutes, hours, days of month, months and weekdays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    weekdays: u8,
    dom_any: bool,
    dow_any: bool,
}

/// How far ahead a next run is searched (a `29 2` schedule may wait 8 years across 2100).
const SEARCH_DAYS: i64 = 8 * 366 + 1;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(text: &str, min: u32, max: u32, names: &[&str], name_base: u32) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + name_base);
    }
    let v: u32 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if v < min || v > max {
        return Err(format!("{v} is outside {min}-{max}"));
    }
    Ok(v)
}

/// Parses one field into a bit set over `min..=max`; returns the bits and whether the field was `*`/`?`.
fn field(text: &str, min: u32, max: u32, names: &[&str], name_base: u32) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut any = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("bad step {s:?}"))?;
                if step == 0 || step > max.max(1) {
                    return Err(format!("bad step {s:?}"));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            any |= step == 1;
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (
                value(a, min, max, names, name_base)?,
                value(b, min, max, names, name_base)?,
            );
            if a > b {
                return Err(format!("range {range:?} runs backwards"));
            }
            (a, b)
        } else {
            let a = value(range, min, max, names, name_base)?;
            // `5/15` means 5, 20, 35, 50.
            (a, if part.contains('/') { max } else { a })
        };
        let mut v = lo;
        while v <= hi {
            bits |= 1u64 << v;
            v += step;
        }
    }
    Ok((bits, any))
}

impl Schedule {
    /// Parses a schedule; the error names the field. Returns the schedule and the time zone of a `CRON_TZ=`/`TZ=`
    /// prefix, if any.
    pub fn parse(text: &str) -> Result<(Schedule, Option<String>), String> {
        let mut t = text.trim();
        let mut zone = None;
        for prefix in ["CRON_TZ=", "TZ="] {
            if let Some(rest) = t.strip_prefix(prefix) {
                let (z, rest) = rest
                    .split_once(char::is_whitespace)
                    .ok_or("a time zone but no schedule")?;
                zone = Some(z.to_owned());
                t = rest.trim();
            }
        }
        let expanded = match t.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *".to_owned(),
            "@monthly" => "0 0 1 * *".to_owned(),
            "@weekly" => "0 0 * * 0".to_owned(),
            "@daily" | "@midnight" => "0 0 * * *".to_owned(),
            "@hourly" => "0 * * * *".to_owned(),
            other if other.starts_with('@') => return Err(format!("unsupported schedule {t:?}")),
            _ => t.to_owned(),
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!("{t:?} has {} fields, expected 5", fields.len()));
        }
        let named = |i: usize, r: Result<(u64, bool), String>| {
            let names = ["minute", "hour", "day of month", "month", "day of week"];
            r.map_err(|e| format!("{} field {:?}: {e}", names[i], fields[i]))
        };
        let (minutes, _) = named(0, field(fields[0], 0, 59, &[], 0))?;
        let (hours, _) = named(1, field(fields[1], 0, 23, &[], 0))?;
        let (days_of_month, dom_any) = named(2, field(fields[2], 1, 31, &[], 0))?;
        let (months, _) = named(3, field(fields[3], 1, 12, &MONTHS, 1))?;
        let (weekdays, dow_any) = named(4, field(fields[4], 0, 7, &WEEKDAYS, 0))?;
        // 7 is Sunday too.
        let weekdays = (weekdays | (weekdays >> 7)) & 0x7f;
        Ok((
            Schedule {
                minutes,
                hours: hours as u32,
                days_of_month: days_of_month as u32,
                months: months as u16,
                weekdays: weekdays as u8,
                dom_any,
                dow_any,
            },
            zone,
        ))
    }

    fn day_matches(&self, day: i64) -> bool {
        let (_, month, dom) = civil_from_days(day);
        if self.months & (1 << month) == 0 {
            return false;
        }
        // 1970-01-01 was a Thursday.
        let weekday = (day + 4).rem_euclid(7) as u32;
        let dom_ok = self.days_of_month & (1 << dom) != 0;
        let dow_ok = self.weekdays & (1 << weekday) != 0;
        if self.dom_any || self.dow_any {
            dom_ok && dow_ok
        } else {
            dom_ok || dow_ok
        }
    }

    /// The first run at or after `t` (UTC), or `None` if there is none within eight years (e.g. `0 0 31 2 *`).
    pub fn next_at_or_after(&self, t: UnixSeconds) -> Option<UnixSeconds> {
        // Beyond year 2200 (or before 1970) is a unit mistake, not a schedule question.
        if !(0..=7_258_118_400).contains(&t) {
            return None;
        }
        let start = t.checked_add(59)?.div_euclid(60) * 60;
        let first_day = start.div_euclid(DAY);
        let start_minute = (start - first_day * DAY) / 60;
        for day in first_day..first_day + SEARCH_DAYS {
            if !self.day_matches(day) {
                continue;
            }
            let from = if day == first_day { start_minute } else { 0 };
            for minute_of_day in from..24 * 60 {
                let (h, m) = (minute_of_day / 60, minute_of_day % 60);
                if self.hours & (1 << h) != 0 && self.minutes & (1 << m) != 0 {
                    return Some(day * DAY + minute_of_day * 60);
                }
            }
        }
        None
    }

    /// The next run at or after `t` and the time from it to the run after it.
    pub fn next_and_period(&self, t: UnixSeconds) -> Option<(UnixSeconds, i64)> {
        let next = self.next_at_or_after(t)?;
        let after = self.next_at_or_after(next + 60)?;
        Some((next, after - next))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reprieve_core::time::{days_from_civil, format_rfc3339};

    fn at(y: i64, m: u32, d: u32, h: i64, mi: i64) -> i64 {
        days_from_civil(y, m, d) * DAY + h * 3600 + mi * 60
    }

    #[test]
    fn monthly_runs_on_the_first() {
        let (s, zone) = Schedule::parse("0 3 1 * *").unwrap();
        assert_eq!(zone, None);
        let next = s.next_at_or_after(at(2025, 1, 15, 12, 0)).unwrap();
        assert_eq!(format_rfc3339(next), "2025-02-01T03:00:00Z");
        let (next, period) = s.next_and_period(at(2025, 2, 1, 3, 0)).unwrap();
        assert_eq!(next, at(2025, 2, 1, 3, 0), "at or after: the run at exactly t counts");
        assert_eq!(period, 28 * DAY);
        let (s, _) = Schedule::parse("@monthly").unwrap();
        assert_eq!(
            s.next_at_or_after(at(2024, 12, 31, 23, 59) + 1),
            Some(at(2025, 1, 1, 0, 0))
        );
    }

    #[test]
    fn steps_names_lists_and_weekdays() {
        let (s, _) = Schedule::parse("*/15 9-17 * * mon-fri").unwrap();
        // 2025-01-04 is a Saturday: next is Monday 09:00.
        assert_eq!(s.next_at_or_after(at(2025, 1, 4, 10, 0)), Some(at(2025, 1, 6, 9, 0)));
        assert_eq!(s.next_and_period(at(2025, 1, 6, 9, 1)).map(|p| p.1), Some(15 * 60));
        let (s, zone) = Schedule::parse("CRON_TZ=Europe/Berlin 30 2 * JAN,jul 7").unwrap();
        assert_eq!(zone.as_deref(), Some("Europe/Berlin"));
        // First Sunday in July 2025 is the 6th.
        assert_eq!(s.next_at_or_after(at(2025, 3, 1, 0, 0)), Some(at(2025, 7, 6, 2, 30)));
        // Both day fields restricted: either matches (the 13th, or any Friday).
        let (s, _) = Schedule::parse("0 0 13 * 5").unwrap();
        assert_eq!(s.next_at_or_after(at(2025, 1, 1, 0, 1)), Some(at(2025, 1, 3, 0, 0)));
    }

    #[test]
    fn impossible_and_bad_schedules() {
        let (s, _) = Schedule::parse("0 0 31 2 *").unwrap();
        assert_eq!(s.next_at_or_after(at(2025, 1, 1, 0, 0)), None);
        let (s, _) = Schedule::parse("0 0 29 2 *").unwrap();
        assert_eq!(s.next_at_or_after(at(2025, 3, 1, 0, 0)), Some(at(2028, 2, 29, 0, 0)));
        for bad in [
            "",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "*/0 * * * *",
            "5-1 * * * *",
            "@reboot",
            "x * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
