//! Weekly time windows (days of the week, a start and end time, a time zone): when reboots
//! may start, when people may restart workloads.

use std::fmt;

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use serde::Deserialize;

/// A weekly window, e.g. Monday to Friday 22:00–04:00 Europe/Berlin. A window whose end is
/// not after its start runs past midnight into the next day.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "WindowSpec")]
pub struct Window {
    days: [bool; 7],
    start: Time,
    end: Time,
    tz: TimeZone,
    text: String,
}

/// A window as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WindowSpec {
    /// `mon`, `tuesday`, ranges like `mon-fri`; every day when empty.
    #[serde(default)]
    days: Vec<String>,
    /// `HH:MM` local time.
    start: String,
    /// `HH:MM` local time.
    end: String,
    /// IANA zone name; UTC when unset.
    #[serde(default)]
    time_zone: Option<String>,
}

// Equal windows are the same days, times and zone: the comparison is total.
impl Eq for Window {}

// === impl Window ===

impl Window {
    /// Builds a window from its parts, as the config file spells them.
    pub fn parse(
        days: &[&str],
        start: &str,
        end: &str,
        time_zone: Option<&str>,
    ) -> Result<Self, WindowError> {
        Window::try_from(WindowSpec {
            days: days.iter().map(|d| d.to_string()).collect(),
            start: start.into(),
            end: end.into(),
            time_zone: time_zone.map(str::to_string),
        })
    }

    /// Whether `at` is inside the window.
    pub fn contains(&self, at: Timestamp) -> bool {
        let local = at.to_zoned(self.tz.clone());
        let time = local.time();
        let today = self.days[day_index(local.weekday())];
        if self.start < self.end {
            return today && time >= self.start && time < self.end;
        }
        // Past midnight: the part before `end` belongs to yesterday's window.
        let yesterday = self.days[day_index(local.weekday().previous())];
        (today && time >= self.start) || (yesterday && time < self.end)
    }

    /// The next time the window opens after `at`, if it is not open now.
    pub fn next_opening(&self, at: Timestamp) -> Option<Zoned> {
        let local = at.to_zoned(self.tz.clone());
        (0..8).find_map(|offset| {
            let date = local.date().checked_add(offset.days()).ok()?;
            if !self.days[day_index(date.weekday())] {
                return None;
            }
            let opening = date
                .to_datetime(self.start)
                .to_zoned(self.tz.clone())
                .ok()?;
            (opening.timestamp() > at).then_some(opening)
        })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a window was refused; its message names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// A day that is not a day of the week.
    #[error("{0:?} is not a day of the week (mon, tue, ..., sun)")]
    Day(String),
    /// A start or end that is not a time of day.
    #[error("window {what} {text:?} is not a time like \"22:30\"")]
    Time {
        /// `start` or `end`.
        what: &'static str,
        /// The time as written.
        text: String,
    },
    /// A time zone that is not in the IANA database.
    #[error("window time zone {0:?} is not an IANA time zone like \"Europe/Berlin\"")]
    TimeZone(String),
}

impl TryFrom<WindowSpec> for Window {
    type Error = WindowError;

    fn try_from(spec: WindowSpec) -> Result<Self, WindowError> {
        let mut days = [spec.days.is_empty(); 7];
        for entry in &spec.days {
            match entry.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (parse_day(from)?, parse_day(to)?);
                    let mut d = from;
                    loop {
                        days[d] = true;
                        if d == to {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => days[parse_day(entry)?] = true,
            }
        }
        let time = |s: &str, what: &'static str| -> Result<Time, WindowError> {
            s.parse::<Time>().map_err(|_| WindowError::Time {
                what,
                text: s.to_string(),
            })
        };
        let start = time(&spec.start, "start")?;
        let end = time(&spec.end, "end")?;
        let zone = spec.time_zone.as_deref().unwrap_or("UTC");
        let tz = TimeZone::get(zone).map_err(|_| WindowError::TimeZone(zone.to_string()))?;
        let day_text = if spec.days.is_empty() {
            "every day".to_string()
        } else {
            spec.days.join(",")
        };
        Ok(Window {
            days,
            start,
            end,
            tz,
            text: format!(
                "{day_text} {}-{} {zone}",
                start.strftime("%H:%M"),
                end.strftime("%H:%M")
            ),
        })
    }
}

fn day_index(day: Weekday) -> usize {
    usize::try_from(day.to_monday_zero_offset()).unwrap_or(0)
}

fn parse_day(s: &str) -> Result<usize, WindowError> {
    let s = s.trim().to_ascii_lowercase();
    let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    names
        .iter()
        .position(|n| *n == s)
        .or_else(|| full.iter().position(|n| *n == s))
        .ok_or(WindowError::Day(s))
}

/// Whether `at` is inside any of `windows` (an empty list allows any time).
pub fn in_any_window(windows: &[Window], at: Timestamp) -> bool {
    windows.is_empty() || windows.iter().any(|w| w.contains(at))
}

/// When the first of `windows` next opens after `at` (none if none opens within a week), in
/// that window's time zone.
pub fn next_opening(windows: &[Window], at: Timestamp) -> Option<Zoned> {
    windows
        .iter()
        .filter_map(|w| w.next_opening(at))
        .min_by_key(|z| z.timestamp())
}

/// [`next_opening`] as `; the next opens at <time>` for a refusal (empty if none opens within
/// a week).
pub fn next_opening_text(windows: &[Window], at: Timestamp) -> String {
    next_opening(windows, at)
        .map(|z| format!("; the next opens at {}", z.strftime("%Y-%m-%d %H:%M %Z")))
        .unwrap_or_default()
}

/// The windows as text, joined by `; `.
pub fn describe(windows: &[Window]) -> String {
    windows
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_day_window_in_a_time_zone() {
        // Berlin is UTC+1 in January.
        let w = Window::parse(&["mon-fri"], "02:00", "05:00", Some("Europe/Berlin")).unwrap();
        assert!(
            w.contains(at("2026-01-05T01:00:00Z")),
            "Monday 02:00 Berlin"
        );
        assert!(
            !w.contains(at("2026-01-05T00:59:59Z")),
            "Monday 01:59 Berlin"
        );
        assert!(
            !w.contains(at("2026-01-05T04:00:00Z")),
            "Monday 05:00 Berlin: end is exclusive"
        );
        assert!(!w.contains(at("2026-01-10T01:00:00Z")), "Saturday");
        assert_eq!(w.to_string(), "mon-fri 02:00-05:00 Europe/Berlin");
    }

    #[test]
    fn a_window_across_midnight_belongs_to_the_day_it_starts() {
        let w = Window::parse(&["fri"], "22:00", "04:00", None).unwrap();
        assert!(w.contains(at("2026-01-09T23:00:00Z")), "Friday 23:00");
        assert!(
            w.contains(at("2026-01-10T03:59:00Z")),
            "Saturday 03:59, still Friday's window"
        );
        assert!(
            !w.contains(at("2026-01-10T22:30:00Z")),
            "Saturday night is not a window"
        );
        assert!(
            !w.contains(at("2026-01-09T03:00:00Z")),
            "Friday early morning is Thursday's"
        );
    }

    #[test]
    fn next_opening_skips_to_an_allowed_day() {
        let w = Window::parse(&["sat", "sun"], "03:00", "05:00", None).unwrap();
        let next = w.next_opening(at("2026-01-07T12:00:00Z")).unwrap();
        assert_eq!(next.timestamp(), at("2026-01-10T03:00:00Z"));
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        let err = Window::parse(&["someday"], "02:00", "05:00", None).unwrap_err();
        assert_eq!(err, WindowError::Day("someday".into()));
        assert!(
            err.to_string().contains("\"someday\" is not a day"),
            "{err}"
        );
        let err = Window::parse(&[], "2am", "05:00", None).unwrap_err();
        assert!(err.to_string().contains("window start \"2am\""), "{err}");
        let err = Window::parse(&[], "02:00", "05:00", Some("Mars/Olympus")).unwrap_err();
        assert_eq!(err, WindowError::TimeZone("Mars/Olympus".into()));
    }

    #[test]
    fn no_windows_means_any_time() {
        assert!(in_any_window(&[], at("2026-01-07T12:00:00Z")));
    }
}
