//! [`RewriteIdentifiers`]: a host's identifier rule over any resolver, without breaking
//! identity stitching.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use customerio_client::Identifier;
use segment_model::Message;

use super::{IdentityResolver, Target};
use crate::store::StoreError;

type Rule = Arc<dyn Fn(Identifier) -> Identifier + Send + Sync>;

/// Applies a host's rule to every identifier another resolver answers (a tenant prefix,
/// lower-cased emails, …), and keeps that resolver's [`delivered`](IdentityResolver::delivered)
/// working.
///
/// A hand-written wrapper that forwards only `resolve` silently stops identity stitching: the
/// inner [`StoreResolver`](super::StoreResolver) writes its links in `delivered`, and the
/// trait's default `delivered` does nothing. This adapter always forwards it, with the target
/// the inner resolver answered (not the rewritten one), so the inner store keeps its own
/// identifiers. By default it asks the inner resolver again for that target (one more store
/// read per delivered message); give [`with_restore`](Self::with_restore) the rule's inverse to
/// skip the read.
///
/// In the mapping, a person identified by a rewritten email also gets the rewritten form as
/// the `email` attribute.
///
/// ```
/// use std::sync::Arc;
/// use cio_segment_sync::customerio_client::Identifier;
/// use cio_segment_sync::identity::{MemoryIdentityStore, RewriteIdentifiers, StoreResolver};
///
/// let inner = Arc::new(StoreResolver::new(Arc::new(MemoryIdentityStore::default()), Default::default()));
/// let resolver = RewriteIdentifiers::new(inner, |identifier| match identifier {
///     Identifier::Id(id) => Identifier::Id(format!("acme:{id}")),
///     Identifier::Email(email) => Identifier::Email(email.to_lowercase()),
///     other => other,
/// });
/// # let _ = resolver;
/// ```
pub struct RewriteIdentifiers {
    inner: Arc<dyn IdentityResolver>,
    rule: Rule,
    restore: Option<Rule>,
}

impl fmt::Debug for RewriteIdentifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RewriteIdentifiers")
            .field("inner", &self.inner)
            .field("restore", &self.restore.is_some())
            .finish_non_exhaustive()
    }
}

impl RewriteIdentifiers {
    /// `rule` over every identifier `inner` answers.
    pub fn new(
        inner: Arc<dyn IdentityResolver>,
        rule: impl Fn(Identifier) -> Identifier + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            rule: Arc::new(rule),
            restore: None,
        }
    }

    /// The inverse of the rule: `restore(rule(x)) == x`. With it, `delivered` hands the inner
    /// resolver the original target without asking it again.
    pub fn with_restore(
        mut self,
        restore: impl Fn(Identifier) -> Identifier + Send + Sync + 'static,
    ) -> Self {
        self.restore = Some(Arc::new(restore));
        self
    }

    /// The rule applied to one identifier.
    pub fn apply(&self, identifier: Identifier) -> Identifier {
        (self.rule)(identifier)
    }
}

/// `target` with `f` applied to every identifier in it.
fn map_target(target: Target, f: &(dyn Fn(Identifier) -> Identifier + Send + Sync)) -> Target {
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

#[async_trait]
impl IdentityResolver for RewriteIdentifiers {
    async fn resolve(&self, message: &Message) -> Result<Target, StoreError> {
        let target = self.inner.resolve(message).await?;
        Ok(map_target(target, self.rule.as_ref()))
    }

    async fn delivered(&self, message: &Message, target: &Target) -> Result<(), StoreError> {
        let original = match &self.restore {
            Some(restore) => map_target(target.clone(), restore.as_ref()),
            None => self.inner.resolve(message).await?,
        };
        self.inner.delivered(message, &original).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    /// Records what `delivered` was called with.
    #[derive(Debug, Default)]
    struct Recording(Mutex<Vec<Target>>);

    #[async_trait]
    impl IdentityResolver for Recording {
        async fn resolve(&self, _: &Message) -> Result<Target, StoreError> {
            Ok(Target::Person {
                identifier: Identifier::id("u-1"),
                anonymous_id: None,
            })
        }

        async fn delivered(&self, _: &Message, target: &Target) -> Result<(), StoreError> {
            self.0.lock().unwrap().push(target.clone());
            Ok(())
        }
    }

    fn prefix(identifier: Identifier) -> Identifier {
        match identifier {
            Identifier::Id(id) => Identifier::Id(format!("acme:{id}")),
            other => other,
        }
    }

    #[tokio::test]
    async fn delivered_reaches_the_inner_resolver_with_its_own_identifiers() {
        let message = Message::from_value(json!({"type": "identify", "userId": "u-1"})).unwrap();
        for restore in [false, true] {
            let inner = Arc::new(Recording::default());
            let mut resolver = RewriteIdentifiers::new(inner.clone(), prefix);
            if restore {
                resolver = resolver.with_restore(|identifier| match identifier {
                    Identifier::Id(id) => {
                        Identifier::Id(id.strip_prefix("acme:").unwrap_or(&id).to_owned())
                    }
                    other => other,
                });
            }
            let target = resolver.resolve(&message).await.unwrap();
            assert_eq!(
                target,
                Target::Person {
                    identifier: Identifier::id("acme:u-1"),
                    anonymous_id: None
                }
            );
            resolver.delivered(&message, &target).await.unwrap();
            assert_eq!(
                *inner.0.lock().unwrap(),
                vec![Target::Person {
                    identifier: Identifier::id("u-1"),
                    anonymous_id: None
                }],
                "restore {restore}"
            );
        }
    }
}
