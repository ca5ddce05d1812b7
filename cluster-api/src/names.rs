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

/// A name the API server would refuse, and why, in the API server's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// Not a lowercase RFC 1123 subdomain (what most objects' names must be).
    #[error(
        "{0:?} is not a valid name: a lowercase RFC 1123 subdomain must consist of lower case \
         alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
         character"
    )]
    Object(String),
    /// Not a lowercase RFC 1123 label (what a namespace's name must be).
    #[error("namespace {0:?} is not a valid namespace name")]
    Namespace(String),
}

/// What the API server checks of an object's name: a lowercase RFC 1123 subdomain.
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    if is_object_name(name) {
        Ok(())
    } else {
        Err(InvalidName::Object(name.to_string()))
    }
}

/// What the API server checks of a namespace's name: a lowercase RFC 1123 label, at most 63
/// letters, digits and `-`, starting and ending with a letter or digit.
pub fn validate_namespace(ns: &str) -> Result<(), InvalidName> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(InvalidName::Namespace(ns.to_string()))
    }
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
        assert!(validate_name("web-1.shop").is_ok());
        assert!(validate_namespace("shop").is_ok());
        for bad in ["", "Shop", "-shop", "shop-", "a.b", &"x".repeat(64)] {
            assert_eq!(
                validate_namespace(bad),
                Err(InvalidName::Namespace(bad.to_string())),
                "{bad:?}"
            );
        }
        assert!(is_older_version("9", "10"), "numerically, not as text");
        assert!(!is_older_version("10", "10"));
        assert!(
            !is_older_version("abc", "10"),
            "what cannot be compared counts as newer"
        );
    }
}
