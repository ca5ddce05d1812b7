//! The group's recent grant times as [`super::RECENT_GRANTS_ANNOTATION`] spells them:
//! RFC 3339 timestamps joined by commas, oldest first (a Lease written before rates existed
//! has none).

use cluster_api::Timestamp;

/// The times in the annotation's value; blanks between commas are skipped.
pub(super) fn parse(list: &str) -> Result<Vec<Timestamp>, jiff::Error> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::parse)
        .collect()
}

/// The annotation's value, or `None` (no annotation) for no times.
pub(super) fn join(times: &[Timestamp]) -> Option<String> {
    let times: Vec<String> = times.iter().map(ToString::to_string).collect();
    (!times.is_empty()).then(|| times.join(","))
}
