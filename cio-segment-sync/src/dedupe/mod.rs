//! De-duplication by claim → commit / release.
//!
//! A plain "seen it" flag set before delivery turns a failed delivery plus the source's retry
//! into a lost event: the retry is skipped as a duplicate of something that never arrived. A
//! [`Deduper`] instead hands out a *lease*:
//!
//! 1. [`claim`](Deduper::claim) a key (a Segment `messageId`, a Customer.io webhook event id) for
//!    a lease period. The answer is [`Claim::First`] (deliver it), [`Claim::InFlight`] (another
//!    worker holds the lease: do not ack, let the source retry) or [`Claim::Done`] (delivered
//!    before: skip and ack).
//! 2. After delivery, [`commit`](Deduper::commit): the key is remembered as done for the store's
//!    time-to-live.
//! 3. After a failure, [`release`](Deduper::release): the key is free again, so the source's
//!    retry is delivered.
//!
//! A lease that runs out (the worker died) frees the key too. Each claim carries a
//! [`ClaimToken`] so a worker whose lease expired cannot commit or release a key another worker
//! has claimed since.
//!
//! ```
//! use std::time::Duration;
//! use cio_segment_sync::dedupe::{Claim, Deduper, MemoryDeduper};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cio_segment_sync::StoreError> {
//! let dedupe = MemoryDeduper::default();
//! let lease = Duration::from_secs(30);
//! let Claim::First(token) = dedupe.claim("msg-1", lease).await? else { unreachable!() };
//! assert_eq!(dedupe.claim("msg-1", lease).await?, Claim::InFlight);
//! // ... deliver ...
//! dedupe.commit("msg-1", &token).await?;
//! assert_eq!(dedupe.claim("msg-1", lease).await?, Claim::Done);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::store::StoreError;

mod memory;

pub use memory::{MemoryDeduper, MemoryDeduperConfig};

/// Proof of holding a key's lease. Opaque; compare it only through the store.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClaimToken(String);

impl ClaimToken {
    /// A fresh random token (UUID v4 text).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Wraps a token read back from a store.
    pub fn from_string(token: String) -> Self {
        Self(token)
    }

    /// The token's text, for stores that persist it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClaimToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimToken({})", &self.0[..self.0.len().min(8)])
    }
}

/// The answer to [`Deduper::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a First claim must be committed or released"]
pub enum Claim {
    /// Nobody delivered this key and nobody holds it: deliver it, then commit or release.
    First(ClaimToken),
    /// Another worker holds a live lease on the key: do not deliver and do not ack.
    InFlight,
    /// The key was delivered before: skip it and ack the source.
    Done,
}

/// Claim → commit / release de-duplication. Implementations must make each call atomic with
/// respect to other workers sharing the store.
#[async_trait]
pub trait Deduper: fmt::Debug + Send + Sync + 'static {
    /// Tries to take `key` for `lease`.
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError>;

    /// Records `key` as delivered. Succeeds when `token` still holds the key, when the lease
    /// expired but nobody claimed the key since, or when the key is already done. Fails with
    /// [`StoreError::LeaseLost`] when another worker holds the key now.
    async fn commit(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError>;

    /// Frees `key` after a failed delivery so the source's retry is delivered. Does nothing
    /// when `token` no longer holds the key.
    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: Deduper + ?Sized> Deduper for Arc<T> {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        (**self).claim(key, lease).await
    }

    async fn commit(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        (**self).commit(key, token).await
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        (**self).release(key, token).await
    }
}

#[async_trait]
impl<T: Deduper + ?Sized> Deduper for Box<T> {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        (**self).claim(key, lease).await
    }

    async fn commit(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        (**self).commit(key, token).await
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        (**self).release(key, token).await
    }
}
