//! Last activity per person, for churn scans.
//!
//! An [`ActivityStore`] records when each person was last active, lists the people inactive
//! since an instant (paged, oldest first, resumable from a cursor) and remembers who has been
//! enrolled into re-engagement, so a scan enrols each person exactly once and new activity
//! after enrolment is noticed (reactivation).
//!
//! Times are unix seconds.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::store::StoreError;

mod memory;

pub use memory::{MemoryActivityConfig, MemoryActivityStore};

/// What [`ActivityStore::record`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The person's last activity after this call (the later of the old and new times).
    pub last_active: i64,
    /// The person was enrolled and this activity ended the enrolment (a reactivation).
    pub reactivated: bool,
}

/// A place in an inactivity listing: the last entry of the previous page.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// Last activity of the entry.
    pub last_active: i64,
    /// The person.
    pub person: String,
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cursor({}, <{} bytes>)",
            self.last_active,
            self.person.len()
        )
    }
}

/// One person in an inactivity listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inactive {
    /// The person (the Customer.io id the sync writes to).
    pub person: String,
    /// When they were last active (unix seconds).
    pub last_active: i64,
}

/// One page of [`ActivityStore::inactive_since`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InactivePage {
    /// People inactive since the instant asked for and not enrolled, oldest activity first.
    pub people: Vec<Inactive>,
    /// Where the next page starts, or `None` when this was the last page.
    pub next: Option<Cursor>,
}

/// Last activity, inactivity listings and enrolment marks, shared by every worker of a store.
#[async_trait]
pub trait ActivityStore: fmt::Debug + Send + Sync + 'static {
    /// Records activity of `person` at `at` (an older time than the one stored changes
    /// nothing). If the person was enrolled, the enrolment ends and `reactivated` is true.
    async fn record(&self, person: &str, at: i64) -> Result<Recorded, StoreError>;

    /// People whose last activity is strictly before `before` and who are not enrolled, oldest
    /// first (ties by person), starting after `after`, at most `limit` of them.
    async fn inactive_since(
        &self,
        before: i64,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<InactivePage, StoreError>;

    /// Enrols `person` if they are not enrolled and their last activity is still exactly
    /// `last_active` (so activity that raced with the scan wins). Returns whether this call
    /// enrolled them.
    async fn enroll(&self, person: &str, last_active: i64) -> Result<bool, StoreError>;

    /// The person's last activity and whether they are enrolled, if known.
    async fn get(&self, person: &str) -> Result<Option<(i64, bool)>, StoreError>;

    /// Removes everything known about `person`. Returns whether they were known.
    async fn forget(&self, person: &str) -> Result<bool, StoreError>;
}

#[async_trait]
impl<T: ActivityStore + ?Sized> ActivityStore for Arc<T> {
    async fn record(&self, person: &str, at: i64) -> Result<Recorded, StoreError> {
        (**self).record(person, at).await
    }

    async fn inactive_since(
        &self,
        before: i64,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<InactivePage, StoreError> {
        (**self).inactive_since(before, after, limit).await
    }

    async fn enroll(&self, person: &str, last_active: i64) -> Result<bool, StoreError> {
        (**self).enroll(person, last_active).await
    }

    async fn get(&self, person: &str) -> Result<Option<(i64, bool)>, StoreError> {
        (**self).get(person).await
    }

    async fn forget(&self, person: &str) -> Result<bool, StoreError> {
        (**self).forget(person).await
    }
}
