//! Reading a request body up to a limit, for the FleetLock endpoints and the API alike; each
//! answers a failure in its own shape.

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

/// How long a request's body may take to arrive once its handler asks for it: the listener's
/// header timeout, put on every request it serves ([`crate::listener`]). A client that
/// declares a body and sends part of it is answered, not waited on for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyDeadline(pub(crate) std::time::Duration);

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// It is longer than the limit (whatever `Content-Length` claimed).
    TooLarge,
    /// It did not arrive whole within the request's [`BodyDeadline`].
    TooSlow(std::time::Duration),
    /// The connection failed while reading it.
    Unreadable(String),
}

/// The whole body, unless it is longer than `limit` bytes (reading stops at the first byte
/// past it) or takes longer than `deadline` to arrive.
pub(crate) async fn read_limited(
    body: Body,
    limit: usize,
    deadline: Option<BodyDeadline>,
) -> Result<Bytes, BodyError> {
    let collect = http_body_util::Limited::new(body, limit).collect();
    let collected = match deadline {
        // A body that came with its headers is ready at the first poll: no timer is made.
        Some(BodyDeadline(within)) => tokio::time::timeout(within, collect)
            .await
            .map_err(|_| BodyError::TooSlow(within))?,
        None => collect.await,
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(e) => Err(BodyError::Unreadable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_at_the_limit_is_read_and_one_byte_more_is_too_large() {
        let at = read_limited(Body::from(vec![b'x'; 16]), 16, None)
            .await
            .unwrap();
        assert_eq!(at.len(), 16);
        assert!(matches!(
            read_limited(Body::from(vec![b'x'; 17]), 16, None).await,
            Err(BodyError::TooLarge)
        ));
        assert!(
            read_limited(Body::empty(), 16, None)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
