//! Leases, and [`modify`]: the one read-change-write loop by which every lock, run and
//! schedule Lease is written with compare-and-swap.

mod object;

use crate::{ClusterApi, Error};

pub use object::Lease;

/// How many times [`modify`] reads afresh after losing a race before giving up.
pub const CAS_ATTEMPTS: usize = 32;

/// What a [`modify`] decides, having read the Lease: `W` goes with a write, `K` answers
/// when nothing is written.
// Built and taken apart at once, never stored: boxing the Lease would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decision<W, K> {
    /// Write this Lease: create it if none was read, replace the one read otherwise.
    Write(Lease, W),
    /// Write nothing; answer this.
    Keep(K),
}

/// What a [`modify`] did.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Modified<W, K> {
    /// It wrote; the Lease as the API server stored it, and what went with the write.
    Written(Lease, W),
    /// It decided not to write.
    Kept(K),
}

/// Why a [`modify`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModifyError {
    /// The Lease could not be read.
    #[error("reading Lease {namespace}/{name}: {source}")]
    Read {
        /// The namespace [`modify`] was given.
        namespace: String,
        /// The Lease name [`modify`] was given.
        name: String,
        /// What the API said.
        source: Error,
    },
    /// The write failed other than by losing a race. If `source` is
    /// [`Error::Unavailable`], the write may have landed all the same (its answer was lost).
    #[error("writing Lease {namespace}/{name}: {source}")]
    Write {
        /// The namespace [`modify`] was given.
        namespace: String,
        /// The Lease name [`modify`] was given.
        name: String,
        /// What the API said.
        source: Error,
    },
    /// Every attempt lost a race with another writer.
    #[error("Lease {namespace}/{name} kept changing; try again")]
    Contended {
        /// The namespace [`modify`] was given.
        namespace: String,
        /// The Lease name [`modify`] was given.
        name: String,
    },
}

impl From<ModifyError> for Error {
    /// The API's own error for a failed read or write; a lost race is a transient
    /// unavailability (asking again may succeed).
    fn from(e: ModifyError) -> Self {
        match e {
            ModifyError::Read { source, .. } | ModifyError::Write { source, .. } => source,
            contended @ ModifyError::Contended { .. } => Error::unavailable(contended.to_string()),
        }
    }
}

/// Reads a Lease (`None` if there is none), lets `decide` say what to write, and writes it with
/// compare-and-swap: created if it was not there, replaced at the version read otherwise.
/// When another writer got there first, it reads afresh and asks `decide` again.
///
/// `decide` may run several times; it must decide from the Lease it is given, not from
/// anything an earlier run saw.
pub async fn modify<W, K>(
    api: &dyn ClusterApi,
    namespace: &str,
    name: &str,
    mut decide: impl FnMut(Option<Lease>) -> Decision<W, K>,
) -> Result<Modified<W, K>, ModifyError> {
    for _ in 0..CAS_ATTEMPTS {
        let current = match api.get_lease(namespace, name).await {
            Ok(lease) => Some(lease),
            Err(Error::NotFound { .. }) => None,
            Err(source) => {
                return Err(ModifyError::Read {
                    namespace: namespace.into(),
                    name: name.into(),
                    source,
                });
            }
        };
        let existed = current.is_some();
        let (lease, answer) = match decide(current) {
            Decision::Keep(answer) => return Ok(Modified::Kept(answer)),
            Decision::Write(lease, answer) => (lease, answer),
        };
        let written = if existed {
            api.replace_lease(&lease).await
        } else {
            api.create_lease(&lease).await
        };
        match written {
            Ok(lease) => return Ok(Modified::Written(lease, answer)),
            Err(Error::Conflict { .. } | Error::AlreadyExists { .. }) => continue,
            Err(source) => {
                return Err(ModifyError::Write {
                    namespace: namespace.into(),
                    name: name.into(),
                    source,
                });
            }
        }
    }
    Err(ModifyError::Contended {
        namespace: namespace.into(),
        name: name.into(),
    })
}
