//! The FleetLock wire protocol: what a request must look like, and the small fixed table of
//! refusals.
//!
//! | kind | status | meaning |
//! |---|---|---|
//! | `missing_protocol_header` | 400 | no `fleet-lock-protocol: true` header |
//! | `method_not_allowed` | 405 | not a POST |
//! | `invalid_body` | 400 | not `{"client_params": {"id": "..", "group": ".."}}` |
//! | `body_too_large` | 413 | body over [`MAX_BODY_BYTES`] |
//! | `invalid_id` | 400 | empty or oversized id |
//! | `invalid_group` | 400 | group not matching `^[a-zA-Z0-9.-]+$` |
//! | `unknown_group` | 400 | group not configured, and unknown groups are refused |
//! | `too_many_groups` | 423 | unknown groups are allowed, but `maxUnknownGroups` of them already hold a Lease |
//! | `unknown_node` | 404 | no Node has this id (or several do) |
//! | `wrong_group` | 403 | the node's group label names another group |
//! | `unverified_caller` | 403 | the request did not come from the node its id belongs to |
//! | `lock_held` | 423 | every slot of the group is taken |
//! | `draining` | 423 | the slot is ours, pods are still leaving; ask again |
//! | `drain_blocked` | 423 | the drain cannot finish without an operator (named pods) |
//! | `drain_would_block` | 423 | pre-flight: the drain could not finish (named pods or budgets); no slot taken, no cordon |
//! | `drain_timed_out` | 423 | the drain overran its deadline and the slot was given back |
//! | `group_paused` | 423 | reboots in the group are paused |
//! | `node_recovering` | 423 | the node holds its slot, recovering from its last reboot; it asks again once healed |
//! | `node_opted_out` | 423 | an operator keeps this node from rebooting (`restart-manager.io/no-reboot`) |
//! | `health_gate_closed` | 423 | too many nodes of the group (or cluster) are NotReady or cordoned by someone else |
//! | `outside_window` | 423 | not inside one of the group's reboot windows |
//! | `blocked_by_pods` | 423 | a pod matching a blocking selector runs on the node |
//! | `too_soon` | 423 | the group's minimum gap between reboots has not passed |
//! | `rate_limited` | 423 | the group's rate allows no more grants in the window ending now |
//! | `too_many_requests` | 429 | this client asked too often; `Retry-After` says when to ask again |
//! | `cluster_unavailable` | 503 | the Kubernetes API could not be reached |
//! | `internal` | 500 | anything else that is our fault |
//!
//! A busy lock is never a 5xx, and "still draining" is never a 2xx: Zincati reboots on any 2xx.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The header every FleetLock request carries, with the value `true`.
pub const PROTOCOL_HEADER: &str = "fleet-lock-protocol";

/// The largest body accepted. Zincati's pretty-printed body is under 200 bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// The longest client id accepted.
pub const MAX_ID_LEN: usize = 256;

/// The longest group name accepted: it travels into a Lease name.
pub const MAX_GROUP_LEN: usize = 200;

/// What a FleetLock client says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientParams {
    /// The client's id (for Zincati, its app-specific machine id): at most
    /// [`MAX_ID_LEN`] characters, no control characters, not blank.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
            example = "e0f3745b108f471cbd4883c6fbed8cdd"
        )
    )]
    pub id: String,
    /// The client's reboot group: letters, digits, `.` and `-`, at most [`MAX_GROUP_LEN`].
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[a-zA-Z0-9.-]+$", max_length = 200, example = "default")
    )]
    pub group: String,
}

/// A FleetLock request's body, as Zincati sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestBody {
    /// Who asks.
    pub client_params: ClientParams,
}

/// Why a request was refused: a machine label and a human explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{kind}: {value}")]
pub struct Refusal {
    /// The machine label.
    pub kind: Kind,
    /// What Zincati writes to the node's journal.
    pub value: String,
}

/// The refusal kinds; see the [module docs](self) for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Kind {
    MissingProtocolHeader,
    MethodNotAllowed,
    InvalidBody,
    BodyTooLarge,
    InvalidId,
    InvalidGroup,
    UnknownGroup,
    TooManyGroups,
    UnknownNode,
    WrongGroup,
    UnverifiedCaller,
    LockHeld,
    Draining,
    DrainBlocked,
    DrainWouldBlock,
    DrainTimedOut,
    GroupPaused,
    NodeRecovering,
    NodeOptedOut,
    HealthGateClosed,
    OutsideWindow,
    BlockedByPods,
    TooSoon,
    RateLimited,
    TooManyRequests,
    ClusterUnavailable,
    Internal,
}

// === impl Kind ===

impl Kind {
    /// Every kind, in the order of the table.
    pub const ALL: [Kind; 27] = [
        Kind::MissingProtocolHeader,
        Kind::MethodNotAllowed,
        Kind::InvalidBody,
        Kind::BodyTooLarge,
        Kind::InvalidId,
        Kind::InvalidGroup,
        Kind::UnknownGroup,
        Kind::TooManyGroups,
        Kind::UnknownNode,
        Kind::WrongGroup,
        Kind::UnverifiedCaller,
        Kind::LockHeld,
        Kind::Draining,
        Kind::DrainBlocked,
        Kind::DrainWouldBlock,
        Kind::DrainTimedOut,
        Kind::GroupPaused,
        Kind::NodeRecovering,
        Kind::NodeOptedOut,
        Kind::HealthGateClosed,
        Kind::OutsideWindow,
        Kind::BlockedByPods,
        Kind::TooSoon,
        Kind::RateLimited,
        Kind::TooManyRequests,
        Kind::ClusterUnavailable,
        Kind::Internal,
    ];

    /// The label sent as `kind` and used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MissingProtocolHeader => "missing_protocol_header",
            Kind::MethodNotAllowed => "method_not_allowed",
            Kind::InvalidBody => "invalid_body",
            Kind::BodyTooLarge => "body_too_large",
            Kind::InvalidId => "invalid_id",
            Kind::InvalidGroup => "invalid_group",
            Kind::UnknownGroup => "unknown_group",
            Kind::TooManyGroups => "too_many_groups",
            Kind::UnknownNode => "unknown_node",
            Kind::WrongGroup => "wrong_group",
            Kind::UnverifiedCaller => "unverified_caller",
            Kind::LockHeld => "lock_held",
            Kind::Draining => "draining",
            Kind::DrainBlocked => "drain_blocked",
            Kind::DrainWouldBlock => "drain_would_block",
            Kind::DrainTimedOut => "drain_timed_out",
            Kind::GroupPaused => "group_paused",
            Kind::NodeRecovering => "node_recovering",
            Kind::NodeOptedOut => "node_opted_out",
            Kind::HealthGateClosed => "health_gate_closed",
            Kind::OutsideWindow => "outside_window",
            Kind::BlockedByPods => "blocked_by_pods",
            Kind::TooSoon => "too_soon",
            Kind::RateLimited => "rate_limited",
            Kind::TooManyRequests => "too_many_requests",
            Kind::ClusterUnavailable => "cluster_unavailable",
            Kind::Internal => "internal",
        }
    }

    /// The kind with this label (as a response's `kind` carries it).
    pub fn parse(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == label)
    }

    /// The HTTP status sent with it.
    pub fn status(self) -> u16 {
        match self {
            Kind::MissingProtocolHeader
            | Kind::InvalidBody
            | Kind::InvalidId
            | Kind::InvalidGroup
            | Kind::UnknownGroup => 400,
            Kind::WrongGroup | Kind::UnverifiedCaller => 403,
            Kind::UnknownNode => 404,
            Kind::MethodNotAllowed => 405,
            Kind::BodyTooLarge => 413,
            Kind::LockHeld
            | Kind::TooManyGroups
            | Kind::Draining
            | Kind::DrainBlocked
            | Kind::DrainWouldBlock
            | Kind::DrainTimedOut
            | Kind::GroupPaused
            | Kind::NodeRecovering
            | Kind::NodeOptedOut
            | Kind::HealthGateClosed
            | Kind::OutsideWindow
            | Kind::BlockedByPods
            | Kind::TooSoon
            | Kind::RateLimited => 423,
            Kind::TooManyRequests => 429,
            Kind::Internal => 500,
            Kind::ClusterUnavailable => 503,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Refusal ===

impl Refusal {
    /// A refusal of this kind.
    pub fn new(kind: Kind, value: impl Into<String>) -> Self {
        Refusal {
            kind,
            value: value.into(),
        }
    }

    /// The HTTP status to send.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The JSON body to send: `{"kind": "..", "value": ".."}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| format!("{{\"kind\":\"{}\"}}", self.kind))
    }

    /// A refusal for a failed cluster call.
    ///
    /// FleetLock callers are not authenticated, so the API's own words (addresses, the
    /// ServiceAccount a permission error names) go to the log, and the caller is told only
    /// what failed.
    pub fn from_cluster(context: &str, error: &cluster_api::Error) -> Self {
        let (kind, what) = if error.is_transient() {
            (
                Kind::ClusterUnavailable,
                "the Kubernetes API could not be reached; try again",
            )
        } else {
            (
                Kind::Internal,
                "the Kubernetes API refused the request; the server's log says why",
            )
        };
        tracing::warn!(context, %error, "a FleetLock request failed on a cluster call");
        Refusal::new(kind, format!("{context}: {what}"))
    }
}

/// Checks the `fleet-lock-protocol` header's value (`None` when absent).
pub fn check_protocol_header(value: Option<&[u8]>) -> Result<(), Refusal> {
    match value {
        Some(v) if v.trim_ascii().eq_ignore_ascii_case(b"true") => Ok(()),
        Some(v) => Err(Refusal::new(
            Kind::MissingProtocolHeader,
            format!(
                "header {PROTOCOL_HEADER} must be \"true\", got {:?}",
                String::from_utf8_lossy(v)
            ),
        )),
        None => Err(Refusal::new(
            Kind::MissingProtocolHeader,
            format!("missing header {PROTOCOL_HEADER}: true; this endpoint speaks FleetLock"),
        )),
    }
}

/// Parses and validates a request body, whatever its Content-Type (Zincati sends none).
pub fn parse_body(body: &[u8]) -> Result<ClientParams, Refusal> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Refusal::new(
            Kind::BodyTooLarge,
            format!(
                "body is {} bytes; the limit is {MAX_BODY_BYTES}",
                body.len()
            ),
        ));
    }
    let parsed: RequestBody = serde_json::from_slice(body).map_err(|e| {
        Refusal::new(
            Kind::InvalidBody,
            format!("expected {{\"client_params\": {{\"id\": .., \"group\": ..}}}}: {e}"),
        )
    })?;
    let params = parsed.client_params;
    validate_id(&params.id)?;
    validate_group(&params.group)?;
    Ok(params)
}

fn validate_id(id: &str) -> Result<(), Refusal> {
    if id.trim().is_empty() {
        return Err(Refusal::new(Kind::InvalidId, "client_params.id is empty"));
    }
    if id.chars().count() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(Refusal::new(
            Kind::InvalidId,
            format!("client_params.id must be at most {MAX_ID_LEN} printable characters"),
        ));
    }
    Ok(())
}

/// Checks a group name against `^[a-zA-Z0-9.-]+$`.
pub fn validate_group(group: &str) -> Result<(), Refusal> {
    let ok = !group.is_empty()
        && group.len() <= MAX_GROUP_LEN
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Refusal::new(
            Kind::InvalidGroup,
            format!(
                "group {group:?} must match ^[a-zA-Z0-9.-]+$ and be at most {MAX_GROUP_LEN} \
                 characters"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Zincati 0.0.32 sends: serde_json's pretty printer.
    const ZINCATI_BODY: &str = "{\n  \"client_params\": {\n    \"id\": \"583627a932274834a8ebd99f4ed41c0d\",\n    \"group\": \"default\"\n  }\n}";

    #[test]
    fn parses_zincatis_body() {
        let p = parse_body(ZINCATI_BODY.as_bytes()).unwrap();
        assert_eq!(p.id, "583627a932274834a8ebd99f4ed41c0d");
        assert_eq!(p.group, "default");
    }

    #[test]
    fn ignores_unknown_fields() {
        let p = parse_body(br#"{"client_params":{"id":"a","group":"g","extra":1},"future":true}"#)
            .unwrap();
        assert_eq!((p.id.as_str(), p.group.as_str()), ("a", "g"));
    }

    #[test]
    fn refusals_name_the_problem() {
        let kind = |b: &[u8]| parse_body(b).unwrap_err().kind;
        assert_eq!(kind(b"not json"), Kind::InvalidBody);
        assert_eq!(kind(br#"{"client_params":{"id":"a"}}"#), Kind::InvalidBody);
        assert_eq!(
            kind(br#"{"client_params":{"id":"","group":"g"}}"#),
            Kind::InvalidId
        );
        assert_eq!(
            kind(br#"{"client_params":{"id":"a","group":""}}"#),
            Kind::InvalidGroup
        );
        assert_eq!(
            kind(br#"{"client_params":{"id":"a","group":"a/b"}}"#),
            Kind::InvalidGroup
        );
        assert_eq!(kind(&vec![b' '; MAX_BODY_BYTES + 1]), Kind::BodyTooLarge);
        let err =
            parse_body(br#"{"client_params":{"id":"a","group":"no_underscores"}}"#).unwrap_err();
        assert!(err.value.contains("\"no_underscores\""), "{}", err.value);
    }

    #[test]
    fn ids_are_limited_in_characters_as_documented() {
        // The OpenAPI document says "at most 256 characters": a client whose id is written in
        // a non-Latin script must not be refused below that.
        let body = |id: &str| format!(r#"{{"client_params":{{"id":"{id}","group":"g"}}}}"#);
        let longest = "é".repeat(MAX_ID_LEN);
        assert!(parse_body(body(&longest).as_bytes()).is_ok());
        let over = "é".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            parse_body(body(&over).as_bytes()).unwrap_err().kind,
            Kind::InvalidId
        );
    }

    #[test]
    fn the_header_must_say_true() {
        assert!(check_protocol_header(Some(b"true")).is_ok());
        assert!(check_protocol_header(Some(b"True")).is_ok());
        assert_eq!(
            check_protocol_header(None).unwrap_err().kind,
            Kind::MissingProtocolHeader
        );
        assert_eq!(
            check_protocol_header(Some(b"false")).unwrap_err().status(),
            400
        );
    }

    #[test]
    fn busy_is_never_a_server_error_and_never_success() {
        for kind in Kind::ALL {
            let status = kind.status();
            assert!(!(200..300).contains(&status), "{kind} must not be 2xx");
            if matches!(kind, Kind::LockHeld | Kind::Draining | Kind::GroupPaused) {
                assert!(status < 500, "{kind} is not a server fault");
            }
        }
        let json = Refusal::new(Kind::LockHeld, "all 1 slots of group default are taken").to_json();
        assert_eq!(
            json,
            r#"{"kind":"lock_held","value":"all 1 slots of group default are taken"}"#
        );
    }
}
