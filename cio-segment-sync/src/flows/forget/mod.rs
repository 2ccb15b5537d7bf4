//! Flow 7: deletion and suppression.
//!
//! A person is forgotten when Segment says so — a `delete` message, a `User Deleted` or
//! `User Suppressed` track event — or when the host asks directly ([`ForgetFlow::forget`]).
//! Customer.io gets a v2 person `delete` or `suppress` through the dispatcher, and only **after
//! Customer.io accepted it** is the person dropped from every store given to the flow:
//!
//! - the identity links ([`IdentityStore::forget`]), by the default resolver;
//! - every store wrapped as a [`Forget`]: the activity store of the churn flow
//!   ([`ForgetActivity`]), the onboarding progress store ([`ForgetProgress`]), and any other
//!   store a host or a later flow (the audience membership store, for example) implements
//!   [`Forget`] for.
//!
//! Forgetting after acceptance means a delivery that fails leaves every store as it was, and
//! the message is released (not acked): the source's retry sends the delete again and forgets
//! again. Both are idempotent. A store that fails to forget makes the message fail the same way
//! ([`PipelineError::Store`]), so the retry forgets it then.
//!
//! # The person key
//!
//! Stores are asked to forget the person under [`person_key`]: the value of the Customer.io
//! identifier the flows write to (the userId for an `id`, the address for an `email`, the raw
//! id for a `cio_id`). Every store that takes part must key people the same way.
//!
//! # Wiring
//!
//! [`ForgettingResolver`] is the piece that does the forgetting: an
//! [`IdentityResolver`] decorator whose [`delivered`](IdentityResolver::delivered) hook forgets
//! the person in every store after a deletion was accepted. [`ForgetFlow`] uses it for a
//! pipeline that only takes deletions; the triggers flow
//! ([`SegmentToCustomerIo`](super::triggers::SegmentToCustomerIo)) uses it too when given
//! stores to forget in, so deletions that arrive on the main stream clean up the same way.

mod config;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use customerio_client::Identifier;
use customerio_client::track::v2::{Operation, PersonOperation, PersonRef};
use segment_model::Message;
use segment_model::spec::LifecycleEvent;

pub use config::ForgetAction;

use super::audience::MembershipStore;
use super::onboarding::ProgressStore;
use crate::activity::ActivityStore;
use crate::dedupe::Deduper;
use crate::identity::{
    IdentityKey, IdentityResolver, IdentityStore, ResolverConfig, SkipReason, StoreResolver, Target,
};
use crate::outcome::describe;
use crate::pipeline::{
    Deliver, DeliverError, Delivered, Outcome, Pipeline, PipelineError, SyncPipeline, ordering_key,
};
use crate::store::StoreError;

/// Whether `message` asks for a person to be forgotten, and how: a `delete` message or a
/// `User Deleted` track is [`ForgetAction::Delete`], a `User Suppressed` track is
/// [`ForgetAction::Suppress`]; anything else is `None`.
///
/// ```
/// use cio_segment_sync::flows::forget::{deletion_action, ForgetAction};
/// use cio_segment_sync::segment_model::Message;
///
/// let track = Message::from_str(r#"{"type":"track","userId":"u","event":"User Suppressed"}"#)?;
/// assert_eq!(deletion_action(&track), Some(ForgetAction::Suppress));
/// let other = Message::from_str(r#"{"type":"track","userId":"u","event":"Signed Up"}"#)?;
/// assert_eq!(deletion_action(&other), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn deletion_action(message: &Message) -> Option<ForgetAction> {
    match message {
        Message::Delete(_) => Some(ForgetAction::Delete),
        Message::Track(_) => match message.event().and_then(LifecycleEvent::from_name) {
            Some(LifecycleEvent::UserDeleted) => Some(ForgetAction::Delete),
            Some(LifecycleEvent::UserSuppressed) => Some(ForgetAction::Suppress),
            _ => None,
        },
        _ => None,
    }
}

/// The key under which the flows' per-person stores know the person `identifier` names: its
/// value (see the [module docs](self)).
pub fn person_key(identifier: &Identifier) -> &str {
    identifier.value()
}

/// A store that can drop everything it holds about one person. Object safe.
///
/// Implement it for any per-person store that must take part in deletion requests, and hand
/// it to [`ForgetFlowBuilder::forget_in`] (or the triggers flow's builder).
#[async_trait]
pub trait Forget: fmt::Debug + Send + Sync + 'static {
    /// Forgets `person` (a [`person_key`]). Forgetting somebody unknown is not an error.
    async fn forget(&self, person: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: Forget + ?Sized> Forget for Arc<T> {
    async fn forget(&self, person: &str) -> Result<(), StoreError> {
        (**self).forget(person).await
    }
}

/// [`Forget`] over an [`ActivityStore`] (calls [`ActivityStore::forget`]).
#[derive(Debug, Clone)]
pub struct ForgetActivity(pub Arc<dyn ActivityStore>);

#[async_trait]
impl Forget for ForgetActivity {
    async fn forget(&self, person: &str) -> Result<(), StoreError> {
        self.0.forget(person).await.map(drop)
    }
}

/// [`Forget`] over a [`ProgressStore`] (calls [`ProgressStore::forget`]).
#[derive(Debug, Clone)]
pub struct ForgetProgress(pub Arc<dyn ProgressStore>);

#[async_trait]
impl Forget for ForgetProgress {
    async fn forget(&self, person: &str) -> Result<(), StoreError> {
        self.0.forget(person).await.map(drop)
    }
}

/// [`Forget`] over a [`MembershipStore`] (calls [`MembershipStore::forget`]): every audience
/// record of the person goes.
#[derive(Debug, Clone)]
pub struct ForgetMemberships(pub Arc<dyn MembershipStore>);

#[async_trait]
impl Forget for ForgetMemberships {
    async fn forget(&self, person: &str) -> Result<(), StoreError> {
        self.0.forget(person).await.map(drop)
    }
}

/// Forgets `person` in every store, trying all of them; the first failure is returned.
async fn forget_everywhere(stores: &[Arc<dyn Forget>], person: &str) -> Result<(), StoreError> {
    let mut first_error = None;
    for store in stores {
        if let Err(error) = store.forget(person).await {
            tracing::warn!(error = %describe(&error), "A store could not forget a deleted person.");
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// An [`IdentityResolver`] decorator: after Customer.io accepted a deletion or suppression
/// (see [`deletion_action`]) about a person, forgets that person in every store it was given,
/// once the inner resolver's own [`delivered`](IdentityResolver::delivered) hook succeeded
/// (the default resolver forgets the identity links there).
///
/// A failure is returned to the pipeline, which releases the message so the source retries it.
pub struct ForgettingResolver {
    inner: Arc<dyn IdentityResolver>,
    stores: Vec<Arc<dyn Forget>>,
}

impl fmt::Debug for ForgettingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForgettingResolver")
            .field("inner", &self.inner)
            .field("stores", &self.stores)
            .finish()
    }
}

impl ForgettingResolver {
    /// Wraps `inner`; deletions are also forgotten in each of `stores`.
    pub fn new(inner: Arc<dyn IdentityResolver>, stores: Vec<Arc<dyn Forget>>) -> Self {
        Self { inner, stores }
    }
}

#[async_trait]
impl IdentityResolver for ForgettingResolver {
    async fn resolve(&self, message: &Message) -> Result<Target, StoreError> {
        self.inner.resolve(message).await
    }

    async fn delivered(&self, message: &Message, target: &Target) -> Result<(), StoreError> {
        self.inner.delivered(message, target).await?;
        if deletion_action(message).is_some()
            && let Target::Person { identifier, .. } = target
        {
            forget_everywhere(&self.stores, person_key(identifier)).await?;
        }
        Ok(())
    }
}

/// A direct [`ForgetFlow::forget`] did not finish. Carries no identifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForgetError {
    /// The person's identifier is not one Customer.io takes (e.g. blank).
    #[error("the person cannot be named to Customer.io")]
    InvalidPerson(#[source] customerio_client::Error),
    /// Customer.io did not accept the request (and it was not dead-lettered): retry later.
    #[error("the deletion was not delivered; retry later")]
    Delivery(#[source] DeliverError),
    /// Customer.io accepted the deletion but a store could not forget the person: retry
    /// later (the deletion is sent again; it is idempotent).
    #[error("a store could not forget the person")]
    Store(#[source] StoreError),
}

/// Flow 7: deletions and suppressions from Segment, and direct [`forget`](Self::forget) calls.
///
/// [`process`](Self::process) takes Segment messages and lets only deletions through (anything
/// else is [`SkipReason::Filtered`]); they run through a [`SyncPipeline`] (dedupe, loop guard,
/// identity, mapping to `delete` / `suppress`, delivery) whose resolver is a
/// [`ForgettingResolver`]. See the [module docs](self).
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use cio_segment_sync::activity::{ActivityStore, MemoryActivityStore};
/// use cio_segment_sync::customerio_client::track::v2::Operation;
/// use cio_segment_sync::flows::forget::{ForgetAction, ForgetFlow};
/// use cio_segment_sync::identity::MemoryIdentityStore;
/// use cio_segment_sync::pipeline::{Deliver, DeliverError, Delivered, Outcome};
///
/// /// Stands in for the dispatcher (see `DispatchDeliver`).
/// #[derive(Debug)]
/// struct AcceptAll;
/// #[async_trait]
/// impl Deliver for AcceptAll {
///     async fn deliver(&self, _: Vec<Operation>, _: &str) -> Result<Delivered, DeliverError> {
///         Ok(Delivered::Accepted)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let activity = Arc::new(MemoryActivityStore::default());
/// activity.record("u-1", 1_700_000_000).await?;
/// let flow = ForgetFlow::builder(Arc::new(AcceptAll), Arc::new(MemoryIdentityStore::default()))
///     .activity_store(activity.clone())
///     .build();
/// assert_eq!(flow.forget("u-1", ForgetAction::Delete).await?, Outcome::Delivered);
/// assert_eq!(activity.get("u-1").await?, None);
/// # Ok(())
/// # }
/// ```
pub struct ForgetFlow {
    pipeline: SyncPipeline,
    identity: Arc<dyn IdentityStore>,
    resolver: StoreResolver,
    stores: Vec<Arc<dyn Forget>>,
    deliver: Arc<dyn Deliver>,
}

impl fmt::Debug for ForgetFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForgetFlow")
            .field("pipeline", &self.pipeline)
            .field("stores", &self.stores)
            .finish_non_exhaustive()
    }
}

impl ForgetFlow {
    /// A builder delivering through `deliver` (usually a
    /// [`DispatchDeliver`](crate::pipeline::DispatchDeliver)) and resolving people with the
    /// default [`StoreResolver`] over `identity` (share it with the other flows, so the links
    /// they wrote are the ones forgotten).
    pub fn builder(
        deliver: Arc<dyn Deliver>,
        identity: Arc<dyn IdentityStore>,
    ) -> ForgetFlowBuilder {
        ForgetFlowBuilder {
            deliver,
            identity,
            resolver_config: ResolverConfig::default(),
            deduper: None,
            lease: None,
            stores: Vec::new(),
        }
    }

    /// Processes a Segment message: a deletion or suppression (see [`deletion_action`]) goes
    /// through the pipeline; anything else is skipped with [`SkipReason::Filtered`] without
    /// touching any store. Ack the source on `Ok`, as for any [`Pipeline`].
    pub async fn process(&self, message: &Message) -> Result<Outcome, PipelineError> {
        if deletion_action(message).is_none() {
            return Ok(Outcome::Skipped(SkipReason::Filtered));
        }
        self.pipeline.process(message).await
    }

    /// Deletes or suppresses the person named `user_id` (a Segment userId; followed through the
    /// identity store's merges) in Customer.io, then, once Customer.io accepted, forgets them in
    /// the identity store and every other store of the flow.
    ///
    /// `Ok(Outcome::DeadLettered)` means Customer.io refused for good: nothing was forgotten.
    /// There is no dedupe for direct calls: calling again sends the request again.
    pub async fn forget(
        &self,
        user_id: &str,
        action: ForgetAction,
    ) -> Result<Outcome, ForgetError> {
        let person = self
            .identity
            .resolve(&IdentityKey::UserId(user_id.to_owned()))
            .await
            .map_err(ForgetError::Store)?
            .unwrap_or_else(|| user_id.to_owned());
        let identifier = self.resolver.identifier_for(&person);
        let reference = PersonRef::new(identifier.clone()).map_err(ForgetError::InvalidPerson)?;
        let operation = Operation::Person(match action {
            ForgetAction::Delete => PersonOperation::Delete(reference),
            ForgetAction::Suppress => PersonOperation::Suppress(reference),
        });
        // A person target always has an ordering key.
        let key = ordering_key(&Target::Person {
            identifier: identifier.clone(),
            anonymous_id: None,
        })
        .unwrap_or_default();
        match self
            .deliver
            .deliver(vec![operation], &key)
            .await
            .map_err(ForgetError::Delivery)?
        {
            Delivered::Accepted => {}
            Delivered::DeadLettered(reason) => return Ok(Outcome::DeadLettered(reason)),
        }
        self.identity
            .forget(&person)
            .await
            .map_err(ForgetError::Store)?;
        forget_everywhere(&self.stores, person_key(&identifier))
            .await
            .map_err(ForgetError::Store)?;
        Ok(Outcome::Delivered)
    }

    /// The pipeline deletions from Segment run through (for its stats).
    pub fn pipeline(&self) -> &SyncPipeline {
        &self.pipeline
    }
}

/// Builds a [`ForgetFlow`].
pub struct ForgetFlowBuilder {
    deliver: Arc<dyn Deliver>,
    identity: Arc<dyn IdentityStore>,
    resolver_config: ResolverConfig,
    deduper: Option<Arc<dyn Deduper>>,
    lease: Option<Duration>,
    stores: Vec<Arc<dyn Forget>>,
}

impl fmt::Debug for ForgetFlowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForgetFlowBuilder")
            .field("resolver_config", &self.resolver_config)
            .field("lease", &self.lease)
            .field("stores", &self.stores)
            .finish_non_exhaustive()
    }
}

impl ForgetFlowBuilder {
    /// The identity rules (default [`ResolverConfig::default`]); use the same as the other flows.
    pub fn resolver_config(mut self, config: ResolverConfig) -> Self {
        self.resolver_config = config;
        self
    }

    /// The deduper of deletion messages (default: an in-memory one of this flow's own).
    pub fn deduper(mut self, deduper: Arc<dyn Deduper>) -> Self {
        self.deduper = Some(deduper);
        self
    }

    /// How long a claim on a deletion message lasts (default: the pipeline's, 10 minutes).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Also forget deleted people in `store`.
    pub fn forget_in(mut self, store: Arc<dyn Forget>) -> Self {
        self.stores.push(store);
        self
    }

    /// Also forget deleted people in the activity store (see [`ForgetActivity`]).
    pub fn activity_store(self, store: Arc<dyn ActivityStore>) -> Self {
        self.forget_in(Arc::new(ForgetActivity(store)))
    }

    /// Also forget deleted people in the onboarding progress store (see [`ForgetProgress`]).
    pub fn progress_store(self, store: Arc<dyn ProgressStore>) -> Self {
        self.forget_in(Arc::new(ForgetProgress(store)))
    }

    /// The flow.
    pub fn build(self) -> ForgetFlow {
        let resolver = StoreResolver::new(self.identity.clone(), self.resolver_config);
        let forgetting = ForgettingResolver::new(
            Arc::new(StoreResolver::new(
                self.identity.clone(),
                self.resolver_config,
            )),
            self.stores.clone(),
        );
        let mut builder =
            SyncPipeline::builder(self.deliver.clone()).resolver(Arc::new(forgetting));
        if let Some(deduper) = self.deduper {
            builder = builder.deduper(deduper);
        }
        if let Some(lease) = self.lease {
            builder = builder.lease(lease);
        }
        ForgetFlow {
            pipeline: builder.build(),
            identity: self.identity,
            resolver,
            stores: self.stores,
            deliver: self.deliver,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::identity::MemoryIdentityStore;

    #[derive(Debug, Default)]
    struct CountingDeliver(AtomicUsize);

    #[async_trait]
    impl Deliver for CountingDeliver {
        async fn deliver(&self, _: Vec<Operation>, _: &str) -> Result<Delivered, DeliverError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Delivered::Accepted)
        }
    }

    #[tokio::test]
    async fn memberships_are_forgotten_for_every_audience() {
        use crate::flows::audience::{MembershipChange, MemoryMembershipStore};

        let store = Arc::new(MemoryMembershipStore::default());
        let change = MembershipChange {
            at: 1,
            tiebreak: "m".into(),
            entered: true,
        };
        for audience in ["a", "b"] {
            assert!(
                store
                    .record_if_newer("u-1", audience, &change)
                    .await
                    .unwrap()
            );
        }
        assert!(store.record_if_newer("u-2", "a", &change).await.unwrap());
        let forget: Arc<dyn Forget> = Arc::new(ForgetMemberships(store.clone()));
        forget.forget("u-1").await.unwrap();
        assert_eq!(store.get("u-1", "a").await.unwrap(), None);
        assert_eq!(store.get("u-1", "b").await.unwrap(), None);
        assert_eq!(store.get("u-2", "a").await.unwrap(), Some(change));
    }

    /// Fails its first `forget`, then records who it forgot.
    #[derive(Debug, Default)]
    struct FlakyStore {
        failed: Mutex<bool>,
        forgotten: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Forget for FlakyStore {
        async fn forget(&self, person: &str) -> Result<(), StoreError> {
            let mut failed = self.failed.lock().unwrap();
            if !*failed {
                *failed = true;
                return Err(StoreError::Corrupt {
                    store: "flaky",
                    message: "first call fails".into(),
                });
            }
            self.forgotten.lock().unwrap().push(person.to_owned());
            Ok(())
        }
    }

    #[test]
    fn deletion_actions() {
        let cases = [
            (
                r#"{"type":"delete","userId":"u"}"#,
                Some(ForgetAction::Delete),
            ),
            (
                r#"{"type":"track","userId":"u","event":"User Deleted"}"#,
                Some(ForgetAction::Delete),
            ),
            (
                r#"{"type":"track","userId":"u","event":"User Suppressed"}"#,
                Some(ForgetAction::Suppress),
            ),
            (
                r#"{"type":"track","userId":"u","event":"User Unsuppressed"}"#,
                None,
            ),
            (r#"{"type":"identify","userId":"u"}"#, None),
        ];
        for (json, want) in cases {
            assert_eq!(
                deletion_action(&Message::from_str(json).unwrap()),
                want,
                "{json}"
            );
        }
    }

    #[tokio::test]
    async fn a_store_that_fails_to_forget_releases_the_message_for_a_retry() {
        let deliver = Arc::new(CountingDeliver::default());
        let store = Arc::new(FlakyStore::default());
        let flow = ForgetFlow::builder(deliver.clone(), Arc::new(MemoryIdentityStore::default()))
            .forget_in(store.clone())
            .build();
        let deleted = Message::from_str(
            r#"{"type":"track","messageId":"m-1","userId":"u-1","event":"User Deleted"}"#,
        )
        .unwrap();
        let error = flow.process(&deleted).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert!(store.forgotten.lock().unwrap().is_empty());
        // The retry is not a duplicate: it deletes again and forgets this time.
        assert_eq!(flow.process(&deleted).await.unwrap(), Outcome::Delivered);
        assert_eq!(deliver.0.load(Ordering::SeqCst), 2);
        assert_eq!(*store.forgotten.lock().unwrap(), vec!["u-1".to_owned()]);
    }

    #[tokio::test]
    async fn direct_forget_follows_merges_to_the_surviving_person() {
        let deliver = Arc::new(CountingDeliver::default());
        let identity = Arc::new(MemoryIdentityStore::default());
        identity.link("u-new", &[]).await.unwrap();
        identity.merge("u-new", "u-old").await.unwrap();
        let store = Arc::new(FlakyStore::default());
        *store.failed.lock().unwrap() = true;
        let flow = ForgetFlow::builder(deliver, identity.clone())
            .forget_in(store.clone())
            .build();
        assert_eq!(
            flow.forget("u-old", ForgetAction::Delete).await.unwrap(),
            Outcome::Delivered
        );
        assert_eq!(*store.forgotten.lock().unwrap(), vec!["u-new".to_owned()]);
        assert_eq!(
            identity
                .resolve(&IdentityKey::UserId("u-new".into()))
                .await
                .unwrap(),
            None
        );
    }
}
