//! Reading a request body up to a limit, for the FleetLock endpoints and the API alike; each
//! answers a failure in its own shape.

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// It is longer than the limit (whatever `Content-Length` claimed).
    TooLarge,
    /// The connection failed while reading it.
    Unreadable(String),
}

/// The whole body, unless it is longer than `limit` bytes: reading stops at the first byte
/// past it.
pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    match http_body_util::Limited::new(body, limit).collect().await {
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
        let at = read_limited(Body::from(vec![b'x'; 16]), 16).await.unwrap();
        assert_eq!(at.len(), 16);
        assert!(matches!(
            read_limited(Body::from(vec![b'x'; 17]), 16).await,
            Err(BodyError::TooLarge)
        ));
        assert!(read_limited(Body::empty(), 16).await.unwrap().is_empty());
    }
}
