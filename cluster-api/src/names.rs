//! Small facts about Kubernetes object names and versions that every layer needs.

/// Whether `name` is what the API server accepts as an object name: at most 253 lowercase
/// letters, digits, `-` and `.`, starting and ending with a letter or digit.
pub fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Whether resourceVersion `a` is older than `b`. Versions are opaque to clients, but every
/// API server (and the simulation) issues increasing integers; anything else counts as newer,
/// so a cache never refuses an object it cannot compare.
pub fn is_older_version(a: &str, b: &str) -> bool {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a < b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert!(is_object_name("web-1.shop"));
        for bad in ["", "Web", "-web", "web.", "under_score", &"x".repeat(254)] {
            assert!(!is_object_name(bad), "{bad:?}");
        }
        assert!(is_older_version("9", "10"), "numerically, not as text");
        assert!(!is_older_version("10", "10"));
        assert!(
            !is_older_version("abc", "10"),
            "what cannot be compared counts as newer"
        );
    }
}
