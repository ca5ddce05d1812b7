//! `--auth tokens`: bearer tokens from a file in kube-apiserver's static token format, one per
//! line: `token,user,uid,"group1,group2"` (`#` starts a comment).

use std::path::Path;

use anyhow::{Context, Result, bail};
use axum::http::HeaderMap;
use restart_core::Identity;

use super::error::AuthError;
use super::headers::{constant_time_eq, group_list};
use super::session::bearer;

/// One line of the token file.
#[derive(Clone)]
pub struct TokenEntry {
    token: String,
    identity: Identity,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("token", &"<redacted>")
            .field("identity", &self.identity)
            .finish()
    }
}

/// Who the bearer token in `headers` belongs to. Every entry is compared, each in constant
/// time, so how long it takes says nothing about which token was close.
pub(super) fn identify(entries: &[TokenEntry], headers: &HeaderMap) -> Result<Identity, AuthError> {
    let token = bearer(headers)?.ok_or_else(|| {
        AuthError::Unauthenticated(
            "this server needs a bearer token (Authorization: Bearer <token>)".into(),
        )
    })?;
    // Compare against every entry, in constant time per entry.
    let mut found = None;
    for entry in entries {
        if constant_time_eq(entry.token.as_bytes(), token.as_bytes()) {
            found = Some(entry.identity.clone());
        }
    }
    found.ok_or_else(|| AuthError::Unauthenticated("the bearer token is not valid".into()))
}

/// Reads a token file.
pub fn load_tokens(path: &Path) -> Result<Vec<TokenEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    parse_tokens(&text).with_context(|| path.display().to_string())
}

/// Parses `token,user,uid,"group1,group2"` lines.
pub fn parse_tokens(text: &str) -> Result<Vec<TokenEntry>> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_csv(line);
        let (Some(token), Some(user)) = (fields.first(), fields.get(1)) else {
            bail!("line {}: expected token,user[,uid[,\"groups\"]]", n + 1);
        };
        if token.len() < 16 {
            bail!(
                "line {}: the token for {user} is shorter than 16 characters",
                n + 1
            );
        }
        let groups = fields.get(3).map(|g| group_list(g)).unwrap_or_default();
        entries.push(TokenEntry {
            token: token.clone(),
            identity: Identity {
                groups,
                ..Identity::user(user.clone())
            },
        });
    }
    if entries.is_empty() {
        bail!("no tokens");
    }
    Ok(entries)
}

fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut current).trim().to_string()),
            c => current.push(c),
        }
    }
    fields.push(current.trim().to_string());
    fields
}

#[cfg(test)]
mod tests {
    use super::super::tests::{headers, tokens};
    use super::super::*;

    #[tokio::test]
    async fn bearer_tokens_identify_users_with_groups() {
        let auth = tokens();
        let alice = auth
            .authenticate(
                &headers(&[("authorization", "Bearer 0123456789abcdef0001")]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(alice.user, "alice");
        assert_eq!(alice.groups, ["sre", "shop"]);
        assert_eq!(auth.admin(&alice), Some(true));
        let bob = auth
            .authenticate(
                &headers(&[("cookie", "x=1; restart_manager_token=0123456789abcdef0002")]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(bob.user, "bob");
        assert_eq!(auth.admin(&bob), Some(false));
        for bad in [
            headers(&[]),
            headers(&[("authorization", "Bearer nope")]),
            headers(&[("authorization", "Basic 0123456789abcdef0001")]),
        ] {
            assert!(matches!(
                auth.authenticate(&bad, None).await,
                Err(AuthError::Unauthenticated(_))
            ));
        }
    }

    #[tokio::test]
    async fn a_base64_token_survives_its_cookie() {
        let token = "dGhpcyBpcyBhIHRva2Vu+/w==";
        let auth = Auth {
            authenticator: Authenticator::Tokens(
                parse_tokens(&format!("{token},carol,3\n")).unwrap(),
            ),
            admins: vec![],
            viewers: vec![],
            allowed_origins: vec![],
        };
        for secure in [false, true] {
            let set = session_cookie(Some(token), secure);
            let (pair, attributes) = set.split_once("; ").unwrap();
            assert!(attributes.contains("HttpOnly") && attributes.contains("SameSite=Strict"));
            assert_eq!(attributes.contains("Secure"), secure, "{set}");
            assert_eq!(pair.starts_with("__Host-"), secure, "{set}");
            assert!(!pair.contains(['+', '/']), "{pair}");
            let who = auth
                .authenticate(&headers(&[("cookie", &format!("other=1; {pair}"))]), None)
                .await
                .unwrap();
            assert_eq!(who.user, "carol");
        }
        // What an earlier page set: the token URL-encoded by the browser.
        let who = auth
            .authenticate(
                &headers(&[(
                    "cookie",
                    "restart_manager_token=dGhpcyBpcyBhIHRva2Vu%2B%2Fw%3D%3D",
                )]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(who.user, "carol");
        assert!(session_cookie(None, true).contains("Max-Age=0"));
    }

    #[test]
    fn token_files_are_checked() {
        assert!(
            parse_tokens("short,alice\n")
                .unwrap_err()
                .to_string()
                .contains("shorter than 16")
        );
        assert!(
            parse_tokens("\n# nothing\n")
                .unwrap_err()
                .to_string()
                .contains("no tokens")
        );
        assert!(
            parse_tokens("onlyonefieldhere1234\n")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }
}
