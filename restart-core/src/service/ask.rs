//! How a restart is asked for, and the reason that comes with it.

use super::settings::MAX_REASON_LEN;
use crate::error::RestartError;

/// What a restart does about the workload's restart windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Windows {
    /// Outside them it is refused.
    #[default]
    Enforce,
    /// Outside them it goes ahead, with a reason: the caller may override them (the server
    /// checked the `unlock` right).
    Override,
    /// Already judged: a set's member, admitted with its run.
    Admitted,
}

/// How a restart is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Ask<'a> {
    /// What the workload's windows mean to it.
    pub(super) windows: Windows,
    /// On behalf of a set's run or a schedule, named in the Event (`restart set shop`):
    /// the configuration admitted it, so the caller's rights are not looked at again.
    pub(super) on_behalf_of: Option<&'a str>,
    /// A restart id derived from the run or the due time, which makes the restart happen
    /// once however often it is asked.
    pub(super) restart_id: Option<&'a str>,
}

impl Ask<'_> {
    /// Asked by a caller who may override the windows.
    pub(super) fn outside_windows() -> Self {
        Ask {
            windows: Windows::Override,
            ..Ask::default()
        }
    }
}

/// The reason trimmed (`None` if empty), or why it is refused.
pub(super) fn clean_reason(reason: Option<&str>) -> Result<Option<String>, RestartError> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if reason.chars().count() > MAX_REASON_LEN {
        return Err(RestartError::Invalid(format!(
            "the reason is longer than {MAX_REASON_LEN} characters"
        )));
    }
    if let Some(c) = reason
        .chars()
        .find(|c| c.is_control() || is_bidi_control(*c))
    {
        return Err(RestartError::Invalid(format!(
            "the reason contains the control character U+{:04X}; write it on one line, \
             without control or text-direction characters",
            u32::from(c)
        )));
    }
    Ok(Some(reason.to_string()))
}

/// The characters that change the direction text is shown in (the Unicode bidirectional
/// controls): in an Event or a log line they can make a line read differently from what it
/// says.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
