//! Identity resolution: which Customer.io person a Segment message is about.
//!
//! [`IdentityResolver`] is the trait the pipeline calls; [`StoreResolver`] is the default. It
//! applies the identifier rules Segment's own Customer.io destination uses, and remembers links
//! between a person's anonymousIds, emails and userId in an [`IdentityStore`], so that later
//! messages that only carry an anonymousId still reach the person.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use customerio_client::Identifier;
use segment_model::{Id, LifecycleEvent, Message};

use super::store::{IdentityKey, IdentityStore};
use super::target::{SkipReason, Target};
use crate::store::StoreError;

/// Decides who a Segment message is about in Customer.io.
///
/// Object safe: the pipeline holds an `Arc<dyn IdentityResolver>`, and the returned futures are
/// `Send`. A host with its own identity rules implements this trait:
///
/// ```
/// use async_trait::async_trait;
/// use cio_segment_sync::customerio_client::Identifier;
/// use cio_segment_sync::identity::{IdentityResolver, SkipReason, Target};
/// use cio_segment_sync::segment_model::Message;
/// use cio_segment_sync::StoreError;
///
/// /// Every message is about the person whose userId it carries; nothing else is written.
/// #[derive(Debug)]
/// struct UserIdOnly;
///
/// #[async_trait]
/// impl IdentityResolver for UserIdOnly {
///     async fn resolve(&self, message: &Message) -> Result<Target, StoreError> {
///         Ok(match message.user_id() {
///             Some(id) if !id.is_empty() => Target::Person {
///                 identifier: Identifier::id(id.as_str()),
///                 anonymous_id: None,
///             },
///             _ => Target::Skip(SkipReason::NoIdentity),
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let resolver: std::sync::Arc<dyn IdentityResolver> = std::sync::Arc::new(UserIdOnly);
/// let track = Message::from_str(r#"{"type":"track","userId":"u-1","event":"Signed Up"}"#)?;
/// assert_eq!(
///     resolver.resolve(&track).await?,
///     Target::Person { identifier: Identifier::id("u-1"), anonymous_id: None }
/// );
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait IdentityResolver: fmt::Debug + Send + Sync + 'static {
    /// Who `message` is about. A store failure means "try again later": the caller must not
    /// ack the message's source.
    async fn resolve(&self, message: &Message) -> Result<Target, StoreError>;

    /// Called by the pipeline once Customer.io accepted the operations written for `message`
    /// about `target` (not after a skip or a dead letter). An error makes the pipeline release
    /// the message so the source retries it. The default does nothing; [`StoreResolver`] writes
    /// the message's identity links here, and forgets a deleted person's.
    ///
    /// **A wrapper must forward this** to the resolver it wraps, or identity stitching stops
    /// silently (no link is ever written). To rewrite identifiers, use
    /// [`RewriteIdentifiers`](super::RewriteIdentifiers), which forwards it with the inner
    /// resolver's own target.
    async fn delivered(&self, message: &Message, target: &Target) -> Result<(), StoreError> {
        let _ = (message, target);
        Ok(())
    }
}

#[async_trait]
impl<T: IdentityResolver + ?Sized> IdentityResolver for Arc<T> {
    async fn resolve(&self, message: &Message) -> Result<Target, StoreError> {
        (**self).resolve(message).await
    }

    async fn delivered(&self, message: &Message, target: &Target) -> Result<(), StoreError> {
        (**self).delivered(message, target).await
    }
}

#[async_trait]
impl<T: IdentityResolver + ?Sized> IdentityResolver for Box<T> {
    async fn resolve(&self, message: &Message) -> Result<Target, StoreError> {
        (**self).resolve(message).await
    }

    async fn delivered(&self, message: &Message, target: &Target) -> Result<(), StoreError> {
        (**self).delivered(message, target).await
    }
}

/// Settings of a [`StoreResolver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolverConfig {
    /// Whether a message about somebody known only by an anonymousId may be written as
    /// [`Target::Anonymous`]. When `false` it is skipped with
    /// [`SkipReason::AnonymousNotAllowed`]. Default `true`. Customer.io's v2 spec does not list
    /// anonymous event identifiers (see `customerio_client::track::v2::EventTarget`), so hosts
    /// whose workspace refuses them turn this off.
    pub allow_anonymous: bool,
    /// Whether a userId that looks like an email address is sent as an `email` identifier
    /// rather than an `id` (what Segment's Customer.io destination does). Default `true`.
    pub email_user_ids_as_email: bool,
    /// Whether events (track, page, screen, group) that carry a userId also write links: the
    /// userId becomes a known person and the event's anonymousId is linked to it, as an
    /// identify does (Segment's own rule: a userId and an anonymousId seen together belong to
    /// one person). Default `false`: only identify and alias write, so an event costs one
    /// store read and no write. Turn it on when people can reach Customer.io without ever
    /// being identified, so a later alias still finds them.
    pub link_from_events: bool,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            allow_anonymous: true,
            email_user_ids_as_email: true,
            link_from_events: false,
        }
    }
}

impl ResolverConfig {
    /// Sets [`ResolverConfig::allow_anonymous`].
    pub fn with_allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }

    /// Sets [`ResolverConfig::email_user_ids_as_email`].
    pub fn with_email_user_ids_as_email(mut self, on: bool) -> Self {
        self.email_user_ids_as_email = on;
        self
    }

    /// Sets [`ResolverConfig::link_from_events`].
    pub fn with_link_from_events(mut self, on: bool) -> Self {
        self.link_from_events = on;
        self
    }
}

/// The default [`IdentityResolver`]: Segment's identifier rules plus links kept in an
/// [`IdentityStore`].
///
/// # Identifiers
///
/// A person's userId becomes a Customer.io identifier this way: a value starting with `cio_`
/// is a `cio_id` (prefix removed); a value shaped like an email address is an `email` (unless
/// [`ResolverConfig::email_user_ids_as_email`] is off); anything else is an `id`. A message
/// without a userId falls back to an email — the identify call's `traits.email`, then
/// `context.traits.email` — and then to its anonymousId.
///
/// "Shaped like an email" means: no whitespace, exactly one `@`, something before it, and a
/// domain after it with a dot that is neither its first nor its last character.
///
/// # Links
///
/// Each person is named in the store by their userId. [`resolve`](IdentityResolver::resolve)
/// only reads the store; the links a message implies are written by
/// [`delivered`](IdentityResolver::delivered), once Customer.io accepted it (the pipeline calls
/// it). So the store mirrors what Customer.io was told, and a message whose delivery failed
/// resolves exactly the same way when the source retries it. A message that was skipped or
/// dead-lettered writes no link.
///
/// - **identify** with a userId links the message's anonymousId and email to that userId (and
///   makes the userId a known person), and the target carries the anonymousId
///   (`Target::Person { anonymous_id: Some(..) }`) so Customer.io attaches that anonymous
///   activity to the person. It is carried every time the identify has one, not only the first
///   time.
/// - A message **without a userId** whose anonymousId (or email) is linked goes to that person.
/// - An identify with neither a userId nor a known anonymousId goes to its email when it has
///   one (and links nothing: the store is keyed by userId), otherwise it is skipped with
///   [`SkipReason::AnonymousNotAllowed`] (traits of somebody unknown have nowhere to go).
/// - Events write nothing, unless [`ResolverConfig::link_from_events`] is on: then an event's
///   userId becomes a known person and its anonymousId is linked to it.
/// - Every userId is followed through the store's merges, so a message for a person merged
///   away earlier reaches the person they were merged into.
/// - **alias** (`previousId` → `userId`): when `previousId` is a known person — a userId the
///   store knows, an anonymousId or email linked to a person, or a value that can only name a
///   person (a `cio_` id or an email address) — the answer is [`Target::Merge`] of that person
///   into the userId's person, and the store records the merge once it is delivered. Otherwise
///   `previousId` is an unknown anonymousId: the answer is the userId's person carrying it as
///   `anonymous_id`, and it is linked to them. Both sides already being one person gives
///   [`SkipReason::AlreadyMerged`], except when `previousId` was merged *by name* into the
///   userId's person before: the merge is then answered again (Customer.io deleted the merged
///   secondary, so repeating the merge changes nothing there). An anonymousId already linked to
///   the userId's person is answered with the same stitch again.
/// - **group** messages resolve the person who belongs to the group, like events.
/// - **delete** resolves the person to delete; it is never anonymous. Once the delete was
///   delivered, the person's links are forgotten — after a `delete` message and after a
///   `User Deleted` or `User Suppressed` track alike — so a later message carrying one of their
///   old anonymousIds or emails does not recreate them.
///
/// ```
/// use std::sync::Arc;
/// use cio_segment_sync::customerio_client::Identifier;
/// use cio_segment_sync::identity::{
///     IdentityResolver, MemoryIdentityStore, ResolverConfig, StoreResolver, Target,
/// };
/// use cio_segment_sync::segment_model::Message;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let resolver = StoreResolver::new(
///     Arc::new(MemoryIdentityStore::default()),
///     ResolverConfig::default(),
/// );
/// let identify = Message::from_str(
///     r#"{"type":"identify","userId":"u-7","anonymousId":"a-1","traits":{"email":"x@example.com"}}"#,
/// )?;
/// let target = resolver.resolve(&identify).await?;
/// assert_eq!(
///     target,
///     Target::Person { identifier: Identifier::id("u-7"), anonymous_id: Some("a-1".into()) }
/// );
/// // Customer.io accepted the identify (the pipeline reports it):
/// resolver.delivered(&identify, &target).await?;
///
/// // A later anonymous-only event from the same browser reaches the person.
/// let page = Message::from_str(r#"{"type":"page","anonymousId":"a-1"}"#)?;
/// assert_eq!(
///     resolver.resolve(&page).await?,
///     Target::Person { identifier: Identifier::id("u-7"), anonymous_id: None }
/// );
/// # Ok(())
/// # }
/// ```
pub struct StoreResolver {
    store: Arc<dyn IdentityStore>,
    config: ResolverConfig,
}

impl fmt::Debug for StoreResolver {
    /// Shows the settings only: a store's own `Debug` may list the identifiers it holds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreResolver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl StoreResolver {
    /// A resolver keeping its links in `store`.
    pub fn new(store: Arc<dyn IdentityStore>, config: ResolverConfig) -> Self {
        Self { store, config }
    }

    /// The store holding the links.
    pub fn store(&self) -> &Arc<dyn IdentityStore> {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    /// The Customer.io identifier of the person named `user_id`.
    pub fn identifier_for(&self, user_id: &str) -> Identifier {
        match user_id.strip_prefix("cio_") {
            Some(raw) if !raw.is_empty() => Identifier::CioId(raw.to_owned()),
            _ if self.config.email_user_ids_as_email && looks_like_email(user_id) => {
                Identifier::email(user_id)
            }
            _ => Identifier::id(user_id),
        }
    }

    /// The person `user_id` names now, following merges.
    async fn canonical(&self, user_id: &str) -> Result<String, StoreError> {
        Ok(self
            .store
            .resolve(&IdentityKey::UserId(user_id.to_owned()))
            .await?
            .unwrap_or_else(|| user_id.to_owned()))
    }

    fn person(&self, user_id: &str, anonymous_id: Option<String>) -> Target {
        Target::Person {
            identifier: self.identifier_for(user_id),
            anonymous_id,
        }
    }

    fn merge_target(&self, primary: &str, secondary: &str) -> Target {
        Target::Merge {
            primary: self.identifier_for(primary),
            secondary: self.identifier_for(secondary),
        }
    }

    /// The target of `message` and the links it implies, by reading the store only.
    async fn plan(&self, message: &Message) -> Result<(Target, Links), StoreError> {
        let ids = Ids::of(message);
        match message {
            Message::Identify(identify) => {
                let email = identify
                    .traits
                    .as_ref()
                    .and_then(|t| t.email())
                    .and_then(non_blank)
                    .or_else(|| context_email(message));
                self.plan_identify(&ids, email).await
            }
            Message::Alias(alias) => {
                let previous = alias.previous_id.as_ref().and_then(text);
                self.plan_alias(ids.user_id.as_deref(), previous.as_deref())
                    .await
            }
            Message::Delete(_) => {
                let target = self
                    .resolve_person(&ids, context_email(message), false)
                    .await?;
                Ok((target, Links::None))
            }
            // Track, page, screen, group, and kinds added later: the person the call is about.
            _ => {
                let target = self
                    .resolve_person(&ids, context_email(message), true)
                    .await?;
                let links = match &ids.user_id {
                    Some(user_id) if self.config.link_from_events => Links::Link {
                        user_id: user_id.clone(),
                        keys: ids
                            .anonymous_id
                            .iter()
                            .map(|anonymous_id| IdentityKey::AnonymousId(anonymous_id.clone()))
                            .collect(),
                    },
                    _ => Links::None,
                };
                Ok((target, links))
            }
        }
    }

    async fn plan_identify(
        &self,
        ids: &Ids,
        email: Option<&str>,
    ) -> Result<(Target, Links), StoreError> {
        if let Some(user_id) = &ids.user_id {
            let mut keys = Vec::with_capacity(2);
            if let Some(anonymous_id) = &ids.anonymous_id {
                keys.push(IdentityKey::AnonymousId(anonymous_id.clone()));
            }
            if let Some(email) = email {
                keys.push(IdentityKey::email(email));
            }
            let person = self.canonical(user_id).await?;
            let target = self.person(&person, ids.anonymous_id.clone());
            let links = Links::Link {
                user_id: user_id.clone(),
                keys,
            };
            return Ok((target, links));
        }
        let target = if let Some(person) = self.linked_person(ids, email).await? {
            self.person(&person, None)
        } else if let Some(email) = email {
            Target::Person {
                identifier: Identifier::email(email),
                anonymous_id: ids.anonymous_id.clone(),
            }
        } else if ids.anonymous_id.is_some() {
            Target::Skip(SkipReason::AnonymousNotAllowed)
        } else {
            Target::Skip(SkipReason::NoIdentity)
        };
        Ok((target, Links::None))
    }

    /// The person a message without a userId belongs to, by its anonymousId, then its email.
    async fn linked_person(
        &self,
        ids: &Ids,
        email: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        if let Some(anonymous_id) = &ids.anonymous_id
            && let Some(person) = self
                .store
                .resolve(&IdentityKey::AnonymousId(anonymous_id.clone()))
                .await?
        {
            return Ok(Some(person));
        }
        if let Some(email) = email
            && let Some(person) = self.store.resolve(&IdentityKey::email(email)).await?
        {
            return Ok(Some(person));
        }
        Ok(None)
    }

    /// Events, groups and deletes: the person by userId, a linked anonymousId or email, an
    /// email, or (when `anonymous_ok`) the anonymousId.
    async fn resolve_person(
        &self,
        ids: &Ids,
        email: Option<&str>,
        anonymous_ok: bool,
    ) -> Result<Target, StoreError> {
        if let Some(user_id) = &ids.user_id {
            let person = self.canonical(user_id).await?;
            return Ok(self.person(&person, None));
        }
        if let Some(person) = self.linked_person(ids, email).await? {
            return Ok(self.person(&person, None));
        }
        if let Some(email) = email {
            return Ok(Target::Person {
                identifier: Identifier::email(email),
                anonymous_id: None,
            });
        }
        match &ids.anonymous_id {
            Some(anonymous_id) if anonymous_ok && self.config.allow_anonymous => {
                Ok(Target::Anonymous {
                    anonymous_id: anonymous_id.clone(),
                })
            }
            Some(_) => Ok(Target::Skip(SkipReason::AnonymousNotAllowed)),
            None => Ok(Target::Skip(SkipReason::NoIdentity)),
        }
    }

    async fn plan_alias(
        &self,
        user_id: Option<&str>,
        previous_id: Option<&str>,
    ) -> Result<(Target, Links), StoreError> {
        let (Some(user_id), Some(previous_id)) = (user_id, previous_id) else {
            return Ok((Target::Skip(SkipReason::NoIdentity), Links::None));
        };
        if user_id == previous_id {
            return Ok((Target::Skip(SkipReason::AlreadyMerged), Links::None));
        }
        let primary = self.canonical(user_id).await?;
        let merge = |secondary: String, email: Option<String>| {
            (
                self.merge_target(&primary, &secondary),
                Links::Merge {
                    primary: primary.clone(),
                    secondary,
                    email,
                },
            )
        };

        // 1. previousId is a person's userId the store knows.
        if let Some(secondary) = self
            .store
            .resolve(&IdentityKey::UserId(previous_id.to_owned()))
            .await?
        {
            if secondary != primary {
                return Ok(merge(secondary, None));
            }
            if previous_id == primary {
                // The userId was merged into previousId before: nothing is left to merge.
                return Ok((Target::Skip(SkipReason::AlreadyMerged), Links::None));
            }
            // previousId was merged into the primary already: answer the merge again.
            return Ok((self.merge_target(&primary, previous_id), Links::None));
        }

        // 2. previousId is an anonymousId or email linked to a person.
        let email_shaped = looks_like_email(previous_id);
        let linked_key = if email_shaped {
            IdentityKey::email(previous_id)
        } else {
            IdentityKey::AnonymousId(previous_id.to_owned())
        };
        if let Some(secondary) = self.store.resolve(&linked_key).await? {
            if secondary != primary {
                return Ok(merge(secondary, None));
            }
            return Ok(if email_shaped {
                (Target::Skip(SkipReason::AlreadyMerged), Links::None)
            } else {
                // Linked already (by an identify or an earlier alias): stitching again is
                // harmless.
                (
                    self.person(&primary, Some(previous_id.to_owned())),
                    Links::None,
                )
            });
        }

        // 3. previousId can only name a person (a cio_id or an email): merge it.
        if previous_id.starts_with("cio_") || email_shaped {
            let email = email_shaped.then(|| previous_id.to_owned());
            return Ok(merge(previous_id.to_owned(), email));
        }

        // 4. An anonymousId nobody knows: it becomes this person's.
        Ok((
            self.person(&primary, Some(previous_id.to_owned())),
            Links::Link {
                user_id: primary.clone(),
                keys: vec![IdentityKey::AnonymousId(previous_id.to_owned())],
            },
        ))
    }

    async fn write(&self, links: Links) -> Result<(), StoreError> {
        match links {
            Links::None => Ok(()),
            Links::Link { user_id, keys } => {
                let outcome = self.store.link(&user_id, &keys).await?;
                for (key, _) in &outcome.moved {
                    tracing::debug!(
                        key_kind = key.kind(),
                        "An identity key moved from one person to another."
                    );
                }
                Ok(())
            }
            Links::Merge {
                primary,
                secondary,
                email,
            } => {
                self.store.merge(&primary, &secondary).await?;
                if let Some(email) = email {
                    self.store
                        .link(&primary, &[IdentityKey::email(&email)])
                        .await?;
                }
                Ok(())
            }
        }
    }
}

/// The store writes a message implies, applied once it was delivered.
enum Links {
    None,
    /// Point `keys` at the person `user_id` (recording them as a known person).
    Link {
        user_id: String,
        keys: Vec<IdentityKey>,
    },
    /// Merge `secondary` into `primary`; link `email` to the primary when the secondary was
    /// named by it.
    Merge {
        primary: String,
        secondary: String,
        email: Option<String>,
    },
}

#[async_trait]
impl IdentityResolver for StoreResolver {
    async fn resolve(&self, message: &Message) -> Result<Target, StoreError> {
        Ok(self.plan(message).await?.0)
    }

    /// Writes the links `message` implies (see the type's docs), and after a delete (a `delete`
    /// message, or a `User Deleted` / `User Suppressed` track) forgets every link of that
    /// person. The links are worked out again from the store as it is now.
    async fn delivered(&self, message: &Message, target: &Target) -> Result<(), StoreError> {
        if removes_person(message) {
            if !matches!(target, Target::Person { .. }) {
                return Ok(());
            }
            let ids = Ids::of(message);
            let person = match &ids.user_id {
                Some(user_id) => Some(user_id.clone()),
                None => self.linked_person(&ids, context_email(message)).await?,
            };
            if let Some(person) = person {
                let removed = self.store.forget(&person).await?;
                tracing::debug!(removed, "Forgot the identity links of a deleted person.");
            }
            return Ok(());
        }
        let (_, links) = self.plan(message).await?;
        self.write(links).await
    }
}

/// Whether `message` removes its person from Customer.io.
fn removes_person(message: &Message) -> bool {
    match message {
        Message::Delete(_) => true,
        Message::Track(_) => matches!(
            message.event().and_then(LifecycleEvent::from_name),
            Some(LifecycleEvent::UserDeleted | LifecycleEvent::UserSuppressed)
        ),
        _ => false,
    }
}

/// A message's userId and anonymousId, blank values dropped.
struct Ids {
    user_id: Option<String>,
    anonymous_id: Option<String>,
}

impl Ids {
    fn of(message: &Message) -> Self {
        Self {
            user_id: message.user_id().and_then(text),
            anonymous_id: message.anonymous_id().and_then(text),
        }
    }
}

fn text(id: &Id) -> Option<String> {
    let value = id.as_str();
    non_blank(&value).map(str::to_owned)
}

fn non_blank(value: &str) -> Option<&str> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then_some(trimmed)
}

fn context_email(message: &Message) -> Option<&str> {
    message
        .context()
        .and_then(|context| context.email())
        .and_then(non_blank)
}

/// Whether `value` is shaped like an email address: no whitespace, one `@` with something
/// before it, and a domain holding a dot that is neither its first nor its last character.
pub fn looks_like_email(value: &str) -> bool {
    if value.chars().any(char::is_whitespace) {
        return false;
    }
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shape() {
        for yes in ["a@b.co", "first.last+tag@mail.example.org"] {
            assert!(looks_like_email(yes), "{yes}");
        }
        for no in [
            "", "usr_1", "@b.co", "a@", "a@b", "a@.b", "a@b.", "a@b@c.d", "a b@c.d", "cio_abc",
        ] {
            assert!(!looks_like_email(no), "{no}");
        }
    }

    #[test]
    fn identifier_rules() {
        let store: Arc<dyn IdentityStore> = Arc::new(super::super::MemoryIdentityStore::default());
        let on = StoreResolver::new(store.clone(), ResolverConfig::default());
        assert_eq!(
            on.identifier_for("cio_03ab"),
            Identifier::CioId("03ab".into())
        );
        assert_eq!(on.identifier_for("cio_"), Identifier::id("cio_"));
        assert_eq!(on.identifier_for("a@b.co"), Identifier::email("a@b.co"));
        assert_eq!(on.identifier_for("usr_1"), Identifier::id("usr_1"));
        let off = StoreResolver::new(
            store,
            ResolverConfig::default().with_email_user_ids_as_email(false),
        );
        assert_eq!(off.identifier_for("a@b.co"), Identifier::id("a@b.co"));
        assert_eq!(
            off.identifier_for("cio_03ab"),
            Identifier::CioId("03ab".into())
        );
    }

    crate::store_resolver_conformance!(memory_store, async {
        crate::identity::MemoryIdentityStore::default()
    });
}
