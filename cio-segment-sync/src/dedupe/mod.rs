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
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::outcome::describe;
use crate::store::StoreError;

mod memory;

pub use memory::{MemoryDeduper, MemoryDeduperConfig};

/// How long Segment keeps retrying a webhook it could not deliver: about 4 hours.
pub const SEGMENT_RETRY_WINDOW: Duration = Duration::from_secs(4 * 60 * 60);

/// How long Customer.io keeps retrying a reporting webhook: 7 days.
pub const CUSTOMERIO_RETRY_WINDOW: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How long a finished Segment messageId is remembered by default: 24 hours, Segment's own
/// de-duplication window, and well past [`SEGMENT_RETRY_WINDOW`] (a redelivery within the
/// source's window is always recognised).
pub const SEGMENT_DONE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a finished Customer.io webhook event id is remembered by default: 8 days, the
/// source's [`CUSTOMERIO_RETRY_WINDOW`] and a day of margin.
pub const CUSTOMERIO_DONE_TTL: Duration = Duration::from_secs(8 * 24 * 60 * 60);

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

    /// Extends the lease `token` holds on `key` to `lease` from now, while the work is still
    /// going on (a delivery waiting out an outage). `Ok(true)` when the caller holds the key
    /// afterwards: its lease was live, or it had run out and nobody had claimed the key since
    /// (it is taken back). `Ok(false)` when the key is done, or another worker holds it now.
    async fn renew(
        &self,
        key: &str,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
impl<T: Deduper + ?Sized> Deduper for Arc<T> {
    async fn renew(
        &self,
        key: &str,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        (**self).renew(key, token, lease).await
    }

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
    async fn renew(
        &self,
        key: &str,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        (**self).renew(key, token, lease).await
    }

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

/// How [`DeduperExt::once`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Once<T> {
    /// The key was free: the work ran and this is its result. The claim was committed when the
    /// work succeeded and released when it failed.
    Ran(T),
    /// Another worker holds the key: the work did not run. Do not ack the source.
    InFlight,
    /// The key was finished before: the work did not run. Skip it and ack the source.
    Done,
}

/// The claim → commit / release protocol, written once, for every [`Deduper`].
///
/// ```
/// use std::time::Duration;
/// use cio_segment_sync::dedupe::{DeduperExt, MemoryDeduper, Once};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cio_segment_sync::StoreError> {
/// let dedupe = MemoryDeduper::default();
/// let lease = Duration::from_secs(30);
/// let sent = dedupe.once("msg-1", lease, || async { Ok::<_, std::io::Error>("sent") }).await?;
/// assert!(matches!(sent, Once::Ran(Ok("sent"))));
/// let again = dedupe.once("msg-1", lease, || async { Ok::<_, std::io::Error>("sent") }).await?;
/// assert!(matches!(again, Once::Done));
/// # Ok(())
/// # }
/// ```
pub trait DeduperExt: Deduper {
    /// Claims `key` for `lease` and, when it is free, runs `work`: on `Ok` the key is committed
    /// (done), on `Err` released (so the source's retry runs it again). A failure to commit or
    /// release is logged and does not change the answer: the work's result stands, and the
    /// claim runs out with its lease.
    ///
    /// While `work` runs, the lease is [renewed](Deduper::renew) every third of `lease`, so it
    /// never lapses however long the work waits (a dispatcher holding the item through an
    /// outage): the source's redeliveries meanwhile are answered [`Once::InFlight`], never run
    /// a second time. If the future is dropped before it finishes, renewals stop and the claim
    /// runs out with its lease.
    ///
    /// # Errors
    ///
    /// The claim itself failed ([`StoreError`]); the work did not run.
    fn once<T, E, F, Fut>(
        &self,
        key: &str,
        lease: Duration,
        work: F,
    ) -> impl Future<Output = Result<Once<Result<T, E>>, StoreError>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T, E>> + Send,
        T: Send,
        E: Send,
    {
        async move {
            let token = match self.claim(key, lease).await? {
                Claim::First(token) => token,
                Claim::InFlight => return Ok(Once::InFlight),
                Claim::Done => return Ok(Once::Done),
            };
            let result = renewing(self, key, &token, lease, work()).await;
            if result.is_ok() {
                if let Err(error) = self.commit(key, &token).await {
                    // Finished all the same. A redelivery before the lease runs out is answered
                    // in flight; after it, it runs again (at least once).
                    tracing::warn!(error = %describe(&error), "Could not record a finished item as done.");
                }
            } else if let Err(error) = self.release(key, &token).await {
                // The claim runs out with its lease; the source's retry waits until then.
                tracing::warn!(error = %describe(&error), "Could not release the claim of a failed item.");
            }
            Ok(Once::Ran(result))
        }
    }
}

impl<D: Deduper + ?Sized> DeduperExt for D {}

/// Runs `work` while renewing `token`'s lease on `key` every third of `lease`.
async fn renewing<D, Fut>(
    dedupe: &D,
    key: &str,
    token: &ClaimToken,
    lease: Duration,
    work: Fut,
) -> Fut::Output
where
    D: Deduper + ?Sized,
    Fut: Future + Send,
{
    let period = (lease / 3).max(Duration::from_millis(1));
    let mut work = std::pin::pin!(work);
    let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held = true;
    loop {
        tokio::select! {
            biased;
            output = &mut work => return output,
            _ = renewals.tick(), if held => match dedupe.renew(key, token, lease).await {
                Ok(true) => {}
                Ok(false) => {
                    held = false;
                    tracing::warn!(
                        "Lost the claim of an item still being delivered; a redelivery may run it again."
                    );
                }
                // The next tick tries again; the lease has two more periods to run.
                Err(error) => tracing::warn!(error = %describe(&error), "Could not renew the claim of an item being delivered."),
            },
        }
    }
}

#[cfg(test)]
mod once_tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    struct Failed;

    #[tokio::test]
    async fn a_success_is_committed_and_a_failure_released() {
        let dedupe = MemoryDeduper::default();
        let lease = Duration::from_secs(30);
        let failed = dedupe
            .once("k", lease, || async { Err::<(), _>(Failed) })
            .await
            .unwrap();
        assert_eq!(failed, Once::Ran(Err(Failed)));
        // Released: the retry runs.
        let ok = dedupe
            .once("k", lease, || async { Ok::<_, Failed>(7) })
            .await
            .unwrap();
        assert_eq!(ok, Once::Ran(Ok(7)));
        // Committed: a third delivery does not run.
        let done = dedupe
            .once("k", lease, || async { Ok::<_, Failed>(8) })
            .await
            .unwrap();
        assert_eq!(done, Once::Done);
    }

    #[tokio::test(start_paused = true)]
    async fn the_lease_is_renewed_while_the_work_runs() {
        let dedupe = std::sync::Arc::new(MemoryDeduper::default());
        let lease = Duration::from_secs(30);
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let worker = {
            let dedupe = std::sync::Arc::clone(&dedupe);
            tokio::spawn(async move {
                dedupe
                    .once("k", lease, || async move {
                        wait.await.ok();
                        Ok::<_, Failed>(())
                    })
                    .await
            })
        };
        // Ten leases later, a redelivery still finds the key in flight.
        tokio::time::sleep(lease * 10).await;
        assert_eq!(dedupe.claim("k", lease).await.unwrap(), Claim::InFlight);
        release.send(()).unwrap();
        assert_eq!(worker.await.unwrap().unwrap(), Once::Ran(Ok(())));
        assert_eq!(dedupe.claim("k", lease).await.unwrap(), Claim::Done);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_work_stops_renewing_and_the_lease_runs_out() {
        let dedupe = std::sync::Arc::new(MemoryDeduper::default());
        let lease = Duration::from_secs(30);
        let worker = {
            let dedupe = std::sync::Arc::clone(&dedupe);
            tokio::spawn(async move {
                dedupe
                    .once("k", lease, std::future::pending::<Result<(), Failed>>)
                    .await
            })
        };
        tokio::time::sleep(lease * 2).await;
        assert_eq!(dedupe.claim("k", lease).await.unwrap(), Claim::InFlight);
        worker.abort();
        tokio::time::sleep(lease * 2).await;
        assert!(matches!(
            dedupe.claim("k", lease).await.unwrap(),
            Claim::First(_)
        ));
    }

    #[tokio::test]
    async fn a_held_key_does_not_run_the_work() {
        let dedupe = MemoryDeduper::default();
        let lease = Duration::from_secs(30);
        let Claim::First(_token) = dedupe.claim("k", lease).await.unwrap() else {
            panic!("the key is free");
        };
        let mut ran = false;
        let answer = dedupe
            .once("k", lease, || {
                ran = true;
                async { Ok::<_, Failed>(()) }
            })
            .await
            .unwrap();
        assert_eq!(answer, Once::InFlight);
        assert!(!ran);
    }
}
