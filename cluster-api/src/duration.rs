//! Durations as people write them in configuration files and flags: `90s`, `15m`, `1h30m`,
//! ISO 8601 `PT15M`, or a bare number of seconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Text that is not a duration; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidDuration(String);

/// Parses `90s`, `15m`, `1h30m`, ISO 8601 `PT15M`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, InvalidDuration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let signed: jiff::SignedDuration = s.parse().map_err(|_| {
        InvalidDuration(format!(
            "{s:?} is not a duration like \"90s\", \"15m\" or \"1h30m\""
        ))
    })?;
    Duration::try_from(signed).map_err(|_| InvalidDuration(format!("{s:?} must not be negative")))
}

/// A duration as people write it, to the second: `45s`, `10m`, `1h30m` (seconds dropped
/// past an hour).
pub fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, (secs % 3600) / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// Deserializes a duration from a string or a number of seconds.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}
