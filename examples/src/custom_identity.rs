//! A house identity rule: the `custom_identity` example's resolver.
//!
//! [`TenantResolver`] lets [`StoreResolver`](cio_segment_sync::identity::StoreResolver) (or any
//! resolver) decide who a message is about, then applies the house rule to the answer, through
//! the library's [`RewriteIdentifiers`] adapter:
//!
//! - a person's id becomes `<tenant>:<id>` (one Customer.io workspace shared by several
//!   tenants, each with its own id space);
//! - an email identifier is lower-cased (so `Ada@Example.com` and `ada@example.com` are one
//!   person, and the profile's `email` attribute takes the lower-cased form);
//! - an alias merge gets the same rule on both sides; anonymous people and skips are unchanged.
//!
//! The inner resolver keeps its links in the Segment ids as sent: the adapter hands its
//! `delivered` the target with the tenant prefix removed again, so identity stitching keeps
//! working and the rule is applied exactly once however often a link is read back.
//!
//! ```
//! use std::sync::Arc;
//! use cio_segment_sync::identity::{MemoryIdentityStore, ResolverConfig, StoreResolver};
//! use examples::custom_identity::TenantResolver;
//!
//! let inner = StoreResolver::new(Arc::new(MemoryIdentityStore::default()), ResolverConfig::default());
//! let resolver = TenantResolver::new("acme", Arc::new(inner));
//! assert_eq!(resolver.tenant(), "acme");
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use cio_segment_sync::StoreError;
use cio_segment_sync::identity::{IdentityResolver, RewriteIdentifiers, Target};
use customerio_client::Identifier;
use segment_model::Message;

/// Tenant-prefixed ids and lower-cased emails over an inner resolver. See the
/// [module docs](self).
#[derive(Debug)]
pub struct TenantResolver {
    tenant: String,
    rewrite: RewriteIdentifiers,
}

impl TenantResolver {
    /// The rule for `tenant` over `inner`.
    pub fn new(tenant: impl Into<String>, inner: Arc<dyn IdentityResolver>) -> Self {
        let tenant = tenant.into();
        let prefix = format!("{tenant}:");
        let apply_prefix = prefix.clone();
        let rewrite = RewriteIdentifiers::new(inner, move |identifier| match identifier {
            Identifier::Id(id) => Identifier::Id(format!("{apply_prefix}{id}")),
            Identifier::Email(email) => Identifier::Email(email.to_lowercase()),
            other => other,
        })
        // The prefix comes off again for the inner store (emails stay lower-cased: the inner
        // resolver links them case-insensitively).
        .with_restore(move |identifier| match identifier {
            Identifier::Id(id) => {
                Identifier::Id(id.strip_prefix(&prefix).unwrap_or(&id).to_owned())
            }
            other => other,
        });
        Self { tenant, rewrite }
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The house rule applied to one identifier.
    pub fn apply(&self, identifier: Identifier) -> Identifier {
        self.rewrite.apply(identifier)
    }
}

#[async_trait]
impl IdentityResolver for TenantResolver {
    async fn resolve(&self, message: &Message) -> Result<Target, StoreError> {
        self.rewrite.resolve(message).await
    }

    async fn delivered(&self, message: &Message, target: &Target) -> Result<(), StoreError> {
        self.rewrite.delivered(message, target).await
    }
}
