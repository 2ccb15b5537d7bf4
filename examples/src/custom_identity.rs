//! A house identity rule: the `custom_identity` example's resolver.
//!
//! [`TenantResolver`] lets [`StoreResolver`](cio_segment_sync::identity::StoreResolver) (or any resolver) decide who a message is about,
//! then applies the house rule to the answer:
//!
//! - a person's id becomes `<tenant>:<id>` (one Customer.io workspace shared by several
//!   tenants, each with its own id space);
//! - an email identifier is lower-cased (so `Ada@Example.com` and `ada@example.com` are one
//!   person);
//! - an alias merge gets the same rule on both sides; anonymous people and skips are unchanged.
//!
//! The inner resolver keeps its links in the Segment ids as sent: [`IdentityResolver::delivered`]
//! hands it the target with the tenant prefix removed again, so the rule is applied exactly
//! once however often a link is read back.
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
use cio_segment_sync::identity::{IdentityResolver, Target};
use customerio_client::Identifier;
use segment_model::Message;

/// Tenant-prefixed ids and lower-cased emails over an inner resolver. See the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct TenantResolver {
    tenant: String,
    inner: Arc<dyn IdentityResolver>,
}

impl TenantResolver {
    /// The rule for `tenant` over `inner`.
    pub fn new(tenant: impl Into<String>, inner: Arc<dyn IdentityResolver>) -> Self {
        Self {
            tenant: tenant.into(),
            inner,
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The house rule applied to one identifier.
    pub fn apply(&self, identifier: Identifier) -> Identifier {
        match identifier {
            Identifier::Id(id) => Identifier::Id(format!("{}:{id}", self.tenant)),
            Identifier::Email(email) => Identifier::Email(email.to_lowercase()),
            other => other,
        }
    }

    /// Undoes the prefix of [`apply`](Self::apply) (emails stay lower-cased).
    fn unapply(&self, identifier: &Identifier) -> Identifier {
        match identifier {
            Identifier::Id(id) => {
                let prefix = format!("{}:", self.tenant);
                Identifier::Id(id.strip_prefix(&prefix).unwrap_or(id).to_owned())
            }
            other => other.clone(),
        }
    }

    fn map_target(&self, target: Target, f: impl Fn(Identifier) -> Identifier) -> Target {
        match target {
            Target::Person {
                identifier,
                anonymous_id,
            } => Target::Person {
                identifier: f(identifier),
                anonymous_id,
            },
            Target::Merge { primary, secondary } => Target::Merge {
                primary: f(primary),
                secondary: f(secondary),
            },
            other => other,
        }
    }
}

#[async_trait]
impl IdentityResolver for TenantResolver {
    async fn resolve(&self, message: &Message) -> Result<Target, StoreError> {
        let target = self.inner.resolve(message).await?;
        Ok(self.map_target(target, |id| self.apply(id)))
    }

    async fn delivered(&self, message: &Message, target: &Target) -> Result<(), StoreError> {
        let original = self.map_target(target.clone(), |id| self.unapply(&id));
        self.inner.delivered(message, &original).await
    }
}
