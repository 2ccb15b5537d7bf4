//! Where identity links live: anonymousId / userId / email → the person's userId.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::store::StoreError;

/// One way a person is known.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKey {
    /// A Segment `anonymousId`.
    AnonymousId(String),
    /// A Segment `userId` (the workspace's own id).
    UserId(String),
    /// An email address, compared case-insensitively (stored trimmed and lower-cased).
    Email(String),
}

impl IdentityKey {
    /// An email key, normalised (trimmed, lower-cased).
    pub fn email(value: &str) -> Self {
        IdentityKey::Email(value.trim().to_lowercase())
    }

    /// A stable text form for stores keyed by strings: `anon:…`, `user:…`, `email:…`.
    pub fn storage_key(&self) -> String {
        match self {
            IdentityKey::AnonymousId(v) => format!("anon:{v}"),
            IdentityKey::UserId(v) => format!("user:{v}"),
            IdentityKey::Email(v) => format!("email:{v}"),
        }
    }

    /// Reads back a [`storage_key`](Self::storage_key).
    pub fn from_storage_key(text: &str) -> Option<Self> {
        if let Some(v) = text.strip_prefix("anon:") {
            Some(IdentityKey::AnonymousId(v.to_owned()))
        } else if let Some(v) = text.strip_prefix("user:") {
            Some(IdentityKey::UserId(v.to_owned()))
        } else {
            text.strip_prefix("email:")
                .map(|v| IdentityKey::Email(v.to_owned()))
        }
    }

    /// The kind, for logs (never the value).
    pub fn kind(&self) -> &'static str {
        match self {
            IdentityKey::AnonymousId(_) => "anonymous_id",
            IdentityKey::UserId(_) => "user_id",
            IdentityKey::Email(_) => "email",
        }
    }
}

impl fmt::Debug for IdentityKey {
    /// Shows the kind and the value's length only: identity values are personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = match self {
            IdentityKey::AnonymousId(v) | IdentityKey::UserId(v) | IdentityKey::Email(v) => v.len(),
        };
        write!(f, "IdentityKey::{}(<{len} bytes>)", self.kind())
    }
}

/// What [`IdentityStore::link`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkOutcome {
    /// Keys that pointed at another person before this link, with that person's userId. The
    /// link now points at the new person (last writer wins); the caller decides whether this
    /// calls for a merge.
    pub moved: Vec<(IdentityKey, String)>,
}

/// Identity links shared by the resolvers of one or many workers.
///
/// Each person is named by their userId. Every other key (anonymousId, email) points at one
/// person; a merged person points at the person it was merged into.
#[async_trait]
pub trait IdentityStore: fmt::Debug + Send + Sync + 'static {
    /// Records `user_id` as a known person and points each of `keys` at it.
    async fn link(&self, user_id: &str, keys: &[IdentityKey]) -> Result<LinkOutcome, StoreError>;

    /// The userId of the person `key` belongs to, following merges. A known person's own
    /// `UserId` key resolves to itself; an unknown key to `None`.
    async fn resolve(&self, key: &IdentityKey) -> Result<Option<String>, StoreError>;

    /// Merges `secondary` into `primary`: every key of the secondary now resolves to the
    /// primary, and so does the secondary's userId.
    async fn merge(&self, primary: &str, secondary: &str) -> Result<(), StoreError>;

    /// Forgets the person `user_id` resolves to: every key that resolves to them (their own
    /// userId, anonymousIds, emails, people merged into them) is removed. Returns how many
    /// links were removed. For deletion and suppression requests.
    async fn forget(&self, user_id: &str) -> Result<usize, StoreError>;
}

#[async_trait]
impl<T: IdentityStore + ?Sized> IdentityStore for Arc<T> {
    async fn link(&self, user_id: &str, keys: &[IdentityKey]) -> Result<LinkOutcome, StoreError> {
        (**self).link(user_id, keys).await
    }

    async fn resolve(&self, key: &IdentityKey) -> Result<Option<String>, StoreError> {
        (**self).resolve(key).await
    }

    async fn merge(&self, primary: &str, secondary: &str) -> Result<(), StoreError> {
        (**self).merge(primary, secondary).await
    }

    async fn forget(&self, user_id: &str) -> Result<usize, StoreError> {
        (**self).forget(user_id).await
    }
}
