//! Why a caller is not let in, one variant per answer status.

/// Why a caller is not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 401: no credentials, or wrong ones.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: a browser page from another site.
    #[error("{0}")]
    ForeignOrigin(String),
    /// 403: authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// 503: the authority could not be asked.
    #[error("{0}")]
    Unavailable(String),
    /// 429: too many callers are being checked at once; try again after `retry_after`
    /// seconds.
    #[error("{message}")]
    Busy {
        /// What could not be done.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
}
