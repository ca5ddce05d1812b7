use std::time::Duration;

/// What went wrong talking to the cluster, in terms the cores can act on.
///
/// Each variant corresponds to a family of Kubernetes API answers; the adapter that talks to a
/// real API server maps HTTP statuses onto these, and `cluster-sim` produces the same variants
/// in the same situations. The messages are the API server's own words where there are any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 404: the object does not exist (or no longer does).
    #[error("{message}")]
    NotFound {
        /// The server's explanation, e.g. `nodes "n1" not found`.
        message: String,
    },
    /// 409 Conflict: the write carried a stale `resourceVersion`. Read again and retry.
    #[error("{message}")]
    Conflict {
        /// The server's explanation.
        message: String,
    },
    /// 409 AlreadyExists: a create named an object that is already there.
    #[error("{message}")]
    AlreadyExists {
        /// The server's explanation.
        message: String,
    },
    /// 429: the server (or a rate limiter in front of it) asks the client to slow down.
    #[error("{message}")]
    TooManyRequests {
        /// The server's explanation.
        message: String,
        /// How long the server asked us to wait, from `Retry-After`, if it said.
        retry_after: Option<Duration>,
    },
    /// 401/403: the caller's credentials do not allow this operation.
    #[error("{message}")]
    Forbidden {
        /// The server's explanation, which names the missing permission.
        message: String,
    },
    /// 400/422: the request itself is wrong and retrying it will not help.
    #[error("{message}")]
    Invalid {
        /// The server's explanation.
        message: String,
    },
    /// 5xx, timeouts and transport failures: the cluster could not answer right now.
    #[error("{message}")]
    Unavailable {
        /// What failed.
        message: String,
    },
}

/// The result type of every [`ClusterApi`](crate::ClusterApi) operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

// === impl Error ===

impl Error {
    /// A [`Error::NotFound`] worded like the API server words it: `leases "x" not found`.
    pub fn not_found(resource: &str, name: &str) -> Self {
        Error::NotFound {
            message: format!("{resource} \"{name}\" not found"),
        }
    }

    /// A [`Error::Conflict`] worded like the API server's answer to a stale `resourceVersion`.
    pub fn conflict(resource: &str, name: &str) -> Self {
        Error::Conflict {
            message: format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been \
                 modified; please apply your changes to the latest version and try again"
            ),
        }
    }

    /// A [`Error::AlreadyExists`] worded like the API server's answer to a duplicate create.
    pub fn already_exists(resource: &str, name: &str) -> Self {
        Error::AlreadyExists {
            message: format!("{resource} \"{name}\" already exists"),
        }
    }

    /// An [`Error::Unavailable`] with the given explanation.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable {
            message: message.into(),
        }
    }

    /// An [`Error::Invalid`] with the given explanation.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid {
            message: message.into(),
        }
    }

    /// A short, stable label for metrics and logs. Never derived from `Debug`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::AlreadyExists { .. } => "already_exists",
            Error::TooManyRequests { .. } => "too_many_requests",
            Error::Forbidden { .. } => "forbidden",
            Error::Invalid { .. } => "invalid",
            Error::Unavailable { .. } => "unavailable",
        }
    }

    /// The server's explanation.
    pub fn message(&self) -> &str {
        match self {
            Error::NotFound { message }
            | Error::Conflict { message }
            | Error::AlreadyExists { message }
            | Error::TooManyRequests { message, .. }
            | Error::Forbidden { message }
            | Error::Invalid { message }
            | Error::Unavailable { message } => message,
        }
    }

    /// Whether the same request may succeed if sent again later, unchanged.
    ///
    /// Conflicts are not transient in this sense: the caller must read again and recompute.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::TooManyRequests { .. } | Error::Unavailable { .. }
        )
    }

    /// The wait the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::TooManyRequests { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
