//! State: the error every state store shares (dedupe claims, identity links, activity, …),
//! the [`Stores`] bundle the flows share, and the named [leases](lease) replicas use to run a
//! job once between them.

pub mod lease;
mod stores;

pub use lease::{LeaseStore, MemoryLeaseStore};
pub use stores::Stores;

use std::error::Error as StdError;

/// A state store could not do what was asked.
///
/// No variant carries a key: keys are message ids and customer identifiers, which do not
/// belong in logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or timed out. Nothing was changed that the caller can
    /// rely on: do not ack the source; retry later.
    #[error("{store}: backend unavailable")]
    Unavailable {
        /// Which store failed, e.g. `redis deduper`.
        store: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
    /// A bounded in-memory store is full of entries it may not evict (live leases).
    #[error("{store}: full ({capacity} live entries); try again later")]
    Full {
        /// Which store is full.
        store: &'static str,
        /// Its capacity.
        capacity: usize,
    },
    /// The caller's lease expired and another worker claimed the key since.
    #[error("{store}: the lease expired and another worker holds the key")]
    LeaseLost {
        /// Which store refused.
        store: &'static str,
    },
    /// The backend holds data this implementation cannot read.
    #[error("{store}: unexpected data: {message}")]
    Corrupt {
        /// Which store.
        store: &'static str,
        /// What was unexpected (never a key or a value).
        message: String,
    },
}
