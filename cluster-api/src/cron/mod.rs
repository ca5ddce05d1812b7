//! Cron schedules: the five fields of crontab(5) in an IANA time zone, and when they next
//! fire.
//!
//! `minute hour day-of-month month day-of-week`, each `*`, a number, a range `a-b`, a step
//! (`*/n`, `a/n`, `a-b/n`) or a comma list of those; months and weekdays also by name (`jan`,
//! `mon`), weekday 0 and 7 both Sunday; `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
//! As in Vixie cron, when both day fields are restricted a day matching either fires.
//!
//! Times are wall-clock times in the zone. A time the clocks skip (spring forward) fires
//! shifted by the jump, once; a time that happens twice (fall back) fires the first time only.
//!
//! Written here rather than taken from a crate: the cron crates on jiff count weekdays from
//! Sunday = 1 and AND the two day fields, unlike every crontab, and the others bring a second
//! date library and time-zone database next to jiff's.

use std::fmt;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;

/// A parsed cron schedule in a time zone.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "CronSpec")]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Whether the day-of-month / day-of-week field was `*` (then only the other counts).
    any_day: bool,
    any_weekday: bool,
    tz: TimeZone,
    text: String,
}

impl Eq for Cron {}

/// A schedule as the configuration file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CronSpec {
    cron: String,
    #[serde(default)]
    time_zone: Option<String>,
}

/// Why a cron schedule was refused; its message names the expression and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// An `@` shorthand that is not one of the five.
    #[error(
        "cron {expression:?}: unknown shorthand (use @hourly, @daily, @weekly, @monthly or @yearly)"
    )]
    UnknownShorthand {
        /// The expression as written.
        expression: String,
    },
    /// Not five fields.
    #[error(
        "cron {expression:?} has {found} fields; expected 5: minute hour day-of-month month day-of-week"
    )]
    FieldCount {
        /// The expression as written.
        expression: String,
        /// How many fields it has.
        found: usize,
    },
    /// One field that does not parse or is out of range.
    #[error("cron {expression:?}: {field}: {problem}")]
    Field {
        /// The expression as written.
        expression: String,
        /// Which field: `minute`, `hour`, `day of month`, `month` or `day of week`.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A time zone that is not in the IANA database.
    #[error("schedule time zone {zone:?} is not an IANA time zone like \"Europe/Berlin\"")]
    TimeZone {
        /// The zone as written.
        zone: String,
    },
    /// A schedule whose day never comes (`0 0 30 2 *`).
    #[error("cron {expression:?} never fires (no such day)")]
    NeverFires {
        /// The expression as written.
        expression: String,
    },
}

impl TryFrom<CronSpec> for Cron {
    type Error = CronError;

    fn try_from(spec: CronSpec) -> Result<Self, CronError> {
        Cron::parse(&spec.cron, spec.time_zone.as_deref())
    }
}

/// How far ahead a schedule is searched: long enough for `0 0 29 2 mon` (a leap day that is
/// a Monday, or any Monday) and every other combination that fires at all.
const SEARCH_DAYS: i64 = 366 * 8;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

// === impl Cron ===

impl Cron {
    /// Parses `expression` in `time_zone` (UTC when `None`).
    pub fn parse(expression: &str, time_zone: Option<&str>) -> Result<Cron, CronError> {
        let expr = expression.trim();
        let expression = || expr.to_string();
        let expanded = match expr.to_ascii_lowercase().as_str() {
            "@hourly" => "0 * * * *".to_string(),
            "@daily" | "@midnight" => "0 0 * * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            "@monthly" => "0 0 1 * *".to_string(),
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            other if other.starts_with('@') => {
                return Err(CronError::UnknownShorthand {
                    expression: expression(),
                });
            }
            _ => expr.to_string(),
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields.as_slice() else {
            return Err(CronError::FieldCount {
                expression: expression(),
                found: fields.len(),
            });
        };
        let err = |field: &'static str, problem: String| CronError::Field {
            expression: expression(),
            field,
            problem,
        };
        let minutes = field(minute, 0, 59, &[]).map_err(|e| err("minute", e))?;
        let hours = field(hour, 0, 23, &[]).map_err(|e| err("hour", e))?;
        let days = field(day, 1, 31, &[]).map_err(|e| err("day of month", e))?;
        let months = field(month, 1, 12, &MONTHS).map_err(|e| err("month", e))?;
        let mut weekdays = field(weekday, 0, 7, &WEEKDAYS).map_err(|e| err("day of week", e))?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        let zone = time_zone.unwrap_or("UTC");
        let tz = TimeZone::get(zone).map_err(|_| CronError::TimeZone {
            zone: zone.to_string(),
        })?;
        let cron = Cron {
            minutes,
            hours: u32::try_from(hours).unwrap_or(0),
            days: u32::try_from(days).unwrap_or(0),
            months: u16::try_from(months).unwrap_or(0),
            weekdays: u8::try_from(weekdays & 0x7f).unwrap_or(0),
            any_day: day.starts_with('*'),
            any_weekday: weekday.starts_with('*'),
            tz,
            text: format!("{expr} {zone}"),
        };
        // A day that never comes (`0 0 30 2 *`) is a mistake worth saying at load.
        let origin = Timestamp::UNIX_EPOCH;
        if cron.next_after(origin).is_none() {
            return Err(CronError::NeverFires {
                expression: expression(),
            });
        }
        Ok(cron)
    }

    /// The first time after `after` (strictly) that the schedule fires.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after.to_zoned(self.tz.clone()).datetime();
        let mut date = start.date();
        for _ in 0..SEARCH_DAYS {
            if self.day_matches(date) {
                for hour in bits(u64::from(self.hours)) {
                    for minute in bits(self.minutes) {
                        let at = DateTime::from_parts(
                            date,
                            jiff::civil::time(hour as i8, minute as i8, 0, 0),
                        );
                        // Later wall-clock times only, and later instants only (a time
                        // that happens twice fired at its first).
                        if at <= start {
                            continue;
                        }
                        let Ok(zoned) = self.tz.to_ambiguous_zoned(at).compatible() else {
                            continue;
                        };
                        if zoned.timestamp() > after {
                            return Some(zoned.timestamp());
                        }
                    }
                }
            }
            date = date.checked_add(1.day()).ok()?;
        }
        None
    }

    /// The last time at or before `at` that the schedule fired, looking back no further than
    /// `since` (exclusive).
    pub fn last_at_or_before(&self, at: Timestamp, since: Timestamp) -> Option<Timestamp> {
        let mut last = None;
        let mut cursor = since;
        while let Some(next) = self.next_after(cursor) {
            if next > at {
                break;
            }
            last = Some(next);
            cursor = next;
        }
        last
    }

    fn day_matches(&self, date: Date) -> bool {
        let month = self.months & (1 << date.month()) != 0;
        let day = self.days & (1 << date.day()) != 0;
        let weekday = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        month
            && match (self.any_day, self.any_weekday) {
                (true, true) => true,
                (true, false) => weekday,
                (false, true) => day,
                (false, false) => day || weekday,
            }
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The set bits of `mask`, lowest first.
fn bits(mask: u64) -> impl Iterator<Item = u64> {
    (0..64).filter(move |b| mask & (1 << b) != 0)
}

/// One field as a bit mask of the values it allows.
fn field(text: &str, min: u64, max: u64, names: &[&str]) -> Result<u64, String> {
    let value = |s: &str| -> Result<u64, String> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            // Month names count from 1, weekday names from 0 (Sunday).
            return Ok(i as u64 + min);
        }
        let n: u64 = s.parse().map_err(|_| {
            format!(
                "{s:?} is not a number{}",
                if names.is_empty() { "" } else { " or a name" }
            )
        })?;
        if n < min || n > max {
            return Err(format!("{n} is outside {min}-{max}"));
        }
        Ok(n)
    };
    let mut mask = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u64 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("step {step:?} is not a positive number"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `a/n`: from a to the end.
                None if step > 1 => (value(range)?, max),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            },
        };
        if from > to {
            return Err(format!("the range {range:?} runs backwards"));
        }
        let mut v = from;
        while v <= to {
            mask |= 1 << v;
            v += step;
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests;
