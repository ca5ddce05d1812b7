//! The Lease name of a group.

/// The Lease name for a group: `fleetlock-<group>`, lowercased. Groups that differ only in
/// case, or whose name is not a valid object name as it stands, get a short hash suffix so
/// that two groups never share a Lease.
pub fn lease_name(group: &str) -> String {
    if is_dns_subdomain(group) && group.len() <= 240 {
        return format!("fleetlock-{group}");
    }
    let base: String = group
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(200)
        .collect();
    let base = base.trim_matches('-');
    let hash = fnv32(group);
    if base.is_empty() {
        format!("fleetlock-{hash:08x}")
    } else {
        format!("fleetlock-{base}-{hash:08x}")
    }
}

/// Whether `s` is a lowercase RFC 1123 subdomain: dot-separated labels of `[a-z0-9-]` that
/// start and end with a letter or digit.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn fnv32(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
