//! Which node is asking: the id Zincati sends, derived from `/etc/machine-id`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The application id Zincati passes to `sd_id128_get_machine_app_specific()`.
pub const ZINCATI_APP_ID: [u8; 16] = [
    0xde, 0x35, 0x10, 0x6b, 0x6e, 0xc2, 0x46, 0x88, 0xb6, 0x3a, 0xfd, 0xda, 0xa1, 0x56, 0x67, 0x9b,
];

/// A machine id that is not 32 hex digits (with or without UUID dashes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a machine id: expected 32 hex digits, optionally with UUID dashes")]
pub struct InvalidMachineId(pub String);

/// Parses a machine id: 32 hex digits, in either case, with or without UUID dashes.
pub fn parse_machine_id(s: &str) -> Result<[u8; 16], InvalidMachineId> {
    let digits: Vec<u8> = s.trim().bytes().filter(|b| *b != b'-').collect();
    hex16(&digits).ok_or_else(|| InvalidMachineId(s.to_string()))
}

/// Exactly 32 hex digits (either case) as the 16 bytes they spell, in one pass.
pub(crate) fn hex16(digits: &[u8]) -> Option<[u8; 16]> {
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The id Zincati sends for a machine: systemd's app-specific machine id.
///
/// HMAC-SHA256 keyed with the machine id over [`ZINCATI_APP_ID`], first 16 bytes, with the
/// UUID version (4) and variant (DCE) bits set, as 32 lowercase hex digits.
///
/// ```
/// assert_eq!(
///     fleetlock_core::zincati_id("0123456789abcdef0123456789abcdef").unwrap(),
///     "583627a932274834a8ebd99f4ed41c0d",
/// );
/// ```
pub fn zincati_id(machine_id: &str) -> Result<String, InvalidMachineId> {
    zincati_id_bytes(machine_id).map(|id| hex(&id))
}

/// [`zincati_id`] as its 16 bytes.
pub fn zincati_id_bytes(machine_id: &str) -> Result<[u8; 16], InvalidMachineId> {
    let key = parse_machine_id(machine_id)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
        .map_err(|_| InvalidMachineId(machine_id.to_string()))?;
    mac.update(&ZINCATI_APP_ID);
    let digest = mac.finalize().into_bytes();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    Ok(id)
}

/// The form ids are compared in: lowercase, without dashes.
pub fn normalize_id(id: &str) -> String {
    id.trim()
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors from shared/reference/fleetlock.md, computed with the libsystemd crate
    /// Zincati uses.
    #[test]
    fn matches_the_verified_vectors() {
        for (machine, expected) in [
            (
                "0123456789abcdef0123456789abcdef",
                "583627a932274834a8ebd99f4ed41c0d",
            ),
            (
                "e0f3745b108f471cbd4883c6fbed8cdd",
                "8f040e49ad9a45a8b0c617313becf153",
            ),
            (
                "1c09ca98-649c-4c7a-bc77-9cd04c96812e",
                "978a225b3d7b40e9acd7ce9b62f68444",
            ),
        ] {
            assert_eq!(zincati_id(machine).unwrap(), expected, "{machine}");
        }
    }

    #[test]
    fn case_and_dashes_do_not_matter() {
        assert_eq!(
            zincati_id("E0F3745B-108F-471C-BD48-83C6FBED8CDD").unwrap(),
            "8f040e49ad9a45a8b0c617313becf153"
        );
        assert_eq!(normalize_id(" 1C09CA98-649c "), "1c09ca98649c");
    }

    #[test]
    fn rejects_what_is_not_a_machine_id() {
        for bad in [
            "",
            "xyz",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdeg",
        ] {
            let err = zincati_id(bad).unwrap_err();
            assert!(
                err.to_string().contains("is not a machine id"),
                "{bad}: {err}"
            );
        }
    }
}
