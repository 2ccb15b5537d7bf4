//! The [`MembershipStore`]: the newest audience membership change seen per person and
//! audience.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// One membership change, as the store orders them.
///
/// Changes are ordered by `at`, then `tiebreak`, then `entered` (an exit before an entry), so
/// any two changes compare the same way whatever order they arrive in.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MembershipChange {
    /// When the change happened (unix milliseconds; the Segment message's `timestamp`).
    pub at: i64,
    /// Breaks ties between changes of the same millisecond (the Segment `messageId`; empty
    /// when there is none).
    pub tiebreak: String,
    /// Entered (`true`) or exited (`false`).
    pub entered: bool,
}

impl fmt::Debug for MembershipChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MembershipChange")
            .field("at", &self.at)
            .field("tiebreak", &format_args!("<{} bytes>", self.tiebreak.len()))
            .field("entered", &self.entered)
            .finish()
    }
}

/// The newest membership change per person and audience, shared by every worker.
///
/// Used so that, for each person and audience, the newest change wins even when messages
/// arrive out of order: a change is applied only if [`record_if_newer`](Self::record_if_newer)
/// says so.
#[async_trait]
pub trait MembershipStore: fmt::Debug + Send + Sync + 'static {
    /// Atomically records `change` for (`person`, `audience`) if it is at least as new as the
    /// change stored, and says whether it did. A repeat of the stored change returns `true`
    /// (so a redelivered change whose first delivery failed is applied again); an older one
    /// returns `false` and changes nothing.
    async fn record_if_newer(
        &self,
        person: &str,
        audience: &str,
        change: &MembershipChange,
    ) -> Result<bool, StoreError>;

    /// The change stored for (`person`, `audience`), if any.
    async fn get(
        &self,
        person: &str,
        audience: &str,
    ) -> Result<Option<MembershipChange>, StoreError>;

    /// Removes every audience of `person`. Returns how many entries were removed.
    async fn forget(&self, person: &str) -> Result<usize, StoreError>;
}

#[async_trait]
impl<T: MembershipStore + ?Sized> MembershipStore for Arc<T> {
    async fn record_if_newer(
        &self,
        person: &str,
        audience: &str,
        change: &MembershipChange,
    ) -> Result<bool, StoreError> {
        (**self).record_if_newer(person, audience, change).await
    }

    async fn get(
        &self,
        person: &str,
        audience: &str,
    ) -> Result<Option<MembershipChange>, StoreError> {
        (**self).get(person, audience).await
    }

    async fn forget(&self, person: &str) -> Result<usize, StoreError> {
        (**self).forget(person).await
    }
}
