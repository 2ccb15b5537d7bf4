//! The [`StoreResolver`] rules, one case per rule, run over an [`IdentityStore`].
//!
//! Each case takes a fresh store and builds the resolver itself, so a host can check that the
//! default rules hold on top of its own store (see [`store_resolver_conformance!`]).
//!
//! [`store_resolver_conformance!`]: crate::store_resolver_conformance

use std::sync::Arc;

use customerio_client::Identifier;
use segment_model::Message;
use serde_json::{Value, json};

use crate::identity::{
    IdentityKey, IdentityResolver, IdentityStore, ResolverConfig, SkipReason, StoreResolver, Target,
};

fn message(value: Value) -> Message {
    match Message::from_value(value) {
        Ok(message) => message,
        Err(err) => panic!("test message does not decode: {err}"),
    }
}

fn resolver(store: Arc<dyn IdentityStore>) -> StoreResolver {
    StoreResolver::new(store, ResolverConfig::default())
}

/// Resolves a message and reports it delivered, as the pipeline does when Customer.io accepted
/// it.
async fn resolve(resolver: &StoreResolver, value: Value) -> Target {
    let message = message(value);
    let target = resolver.resolve(&message).await.expect("resolve");
    resolver
        .delivered(&message, &target)
        .await
        .expect("delivered");
    target
}

/// Resolves a message whose delivery then fails: nothing is reported delivered.
async fn resolve_undelivered(resolver: &StoreResolver, value: Value) -> Target {
    resolver.resolve(&message(value)).await.expect("resolve")
}

fn person(identifier: Identifier) -> Target {
    Target::Person {
        identifier,
        anonymous_id: None,
    }
}

fn stitched(identifier: Identifier, anonymous_id: &str) -> Target {
    Target::Person {
        identifier,
        anonymous_id: Some(anonymous_id.to_owned()),
    }
}

fn merge(primary: Identifier, secondary: Identifier) -> Target {
    Target::Merge { primary, secondary }
}

/// A plain userId is an `id` identifier.
pub async fn user_id_is_id(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(
        &r,
        json!({"type": "track", "userId": "rc-u1", "event": "E"}),
    )
    .await;
    assert_eq!(target, person(Identifier::id("rc-u1")));
}

/// A numeric userId is an `id` identifier spelled as its JSON number.
pub async fn numeric_user_id_is_id(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(&r, json!({"type": "track", "userId": 4242, "event": "E"})).await;
    assert_eq!(target, person(Identifier::id("4242")));
}

/// A userId starting with `cio_` is a `cio_id`, prefix removed.
pub async fn cio_prefixed_user_id_is_cio_id(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(
        &r,
        json!({"type": "track", "userId": "cio_03000001", "event": "E"}),
    )
    .await;
    assert_eq!(target, person(Identifier::CioId("03000001".into())));
}

/// An email-shaped userId is an `email` identifier by default.
pub async fn email_shaped_user_id_is_email(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(
        &r,
        json!({"type": "track", "userId": "rc@example.com", "event": "E"}),
    )
    .await;
    assert_eq!(target, person(Identifier::email("rc@example.com")));
}

/// With `email_user_ids_as_email` off, an email-shaped userId stays an `id`.
pub async fn email_shaped_user_id_is_id_when_configured(store: Arc<dyn IdentityStore>) {
    let r = StoreResolver::new(
        store,
        ResolverConfig::default().with_email_user_ids_as_email(false),
    );
    let target = resolve(
        &r,
        json!({"type": "track", "userId": "rc@example.com", "event": "E"}),
    )
    .await;
    assert_eq!(target, person(Identifier::id("rc@example.com")));
}

/// Blank ids count as absent.
pub async fn blank_ids_are_no_identity(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(
        &r,
        json!({"type": "track", "userId": "", "anonymousId": "  ", "event": "E"}),
    )
    .await;
    assert_eq!(target, Target::Skip(SkipReason::NoIdentity));
}

/// Without userId or anonymousId, an identify falls back to `traits.email`.
pub async fn identify_falls_back_to_traits_email(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(
        &r,
        json!({"type": "identify", "traits": {"email": "rc-t@example.com"},
               "context": {"traits": {"email": "rc-c@example.com"}}}),
    )
    .await;
    assert_eq!(target, person(Identifier::email("rc-t@example.com")));
}

/// An event without a userId falls back to `context.traits.email` before its anonymousId.
pub async fn event_falls_back_to_context_email(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(
        &r,
        json!({"type": "track", "anonymousId": "rc-a-unknown", "event": "E",
               "context": {"traits": {"email": "rc-c@example.com"}}}),
    )
    .await;
    assert_eq!(target, person(Identifier::email("rc-c@example.com")));
}

/// An event from somebody known only by an unlinked anonymousId is anonymous.
pub async fn unknown_anonymous_event_is_anonymous(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(
        &r,
        json!({"type": "page", "anonymousId": "rc-a1", "name": "Home"}),
    )
    .await;
    assert_eq!(
        target,
        Target::Anonymous {
            anonymous_id: "rc-a1".into()
        }
    );
}

/// With `allow_anonymous` off, that event is skipped.
pub async fn anonymous_not_allowed_when_configured(store: Arc<dyn IdentityStore>) {
    let r = StoreResolver::new(store, ResolverConfig::default().with_allow_anonymous(false));
    let target = resolve(
        &r,
        json!({"type": "page", "anonymousId": "rc-a1", "name": "Home"}),
    )
    .await;
    assert_eq!(target, Target::Skip(SkipReason::AnonymousNotAllowed));
}

/// No userId, anonymousId or email: skipped.
pub async fn no_identity_is_skipped(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(&r, json!({"type": "track", "event": "E"})).await;
    assert_eq!(target, Target::Skip(SkipReason::NoIdentity));
}

/// An identify after anonymous activity carries the anonymousId so Customer.io stitches it.
pub async fn identify_carries_anonymous_id(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(
        &r,
        json!({"type": "identify", "userId": "rc-u1", "anonymousId": "rc-a1"}),
    )
    .await;
    assert_eq!(target, stitched(Identifier::id("rc-u1"), "rc-a1"));
    // Carried again by a repeated identify (a retry must stitch too).
    let again = resolve(
        &r,
        json!({"type": "identify", "userId": "rc-u1", "anonymousId": "rc-a1"}),
    )
    .await;
    assert_eq!(again, stitched(Identifier::id("rc-u1"), "rc-a1"));
}

/// An identify links its anonymousId: a later anonymous-only event reaches the person.
pub async fn identify_links_anonymous_id(store: Arc<dyn IdentityStore>) {
    let r = resolver(store.clone());
    resolve(
        &r,
        json!({"type": "identify", "userId": "rc-u1", "anonymousId": "rc-a1"}),
    )
    .await;
    assert_eq!(
        store
            .resolve(&IdentityKey::AnonymousId("rc-a1".into()))
            .await
            .unwrap()
            .as_deref(),
        Some("rc-u1")
    );
    let target = resolve(
        &r,
        json!({"type": "track", "anonymousId": "rc-a1", "event": "E"}),
    )
    .await;
    assert_eq!(target, person(Identifier::id("rc-u1")));
}

/// An identify links its traits email: a later event carrying only that email (any case)
/// reaches the person by userId.
pub async fn identify_links_email(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    resolve(
        &r,
        json!({"type": "identify", "userId": "rc-u1", "traits": {"email": "RC@Example.com"}}),
    )
    .await;
    let target = resolve(
        &r,
        json!({"type": "track", "event": "E",
               "context": {"traits": {"email": "rc@example.com"}}}),
    )
    .await;
    assert_eq!(target, person(Identifier::id("rc-u1")));
}

/// An identify with only an unknown anonymousId has no person to update: skipped.
pub async fn anonymous_identify_unknown_is_skipped(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(
        &r,
        json!({"type": "identify", "anonymousId": "rc-a1", "traits": {"plan": "pro"}}),
    )
    .await;
    assert_eq!(target, Target::Skip(SkipReason::AnonymousNotAllowed));
}

/// An identify with only a linked anonymousId updates the person.
pub async fn anonymous_identify_linked_is_person(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    resolve(
        &r,
        json!({"type": "identify", "userId": "rc-u1", "anonymousId": "rc-a1"}),
    )
    .await;
    let target = resolve(
        &r,
        json!({"type": "identify", "anonymousId": "rc-a1", "traits": {"plan": "pro"}}),
    )
    .await;
    assert_eq!(target, person(Identifier::id("rc-u1")));
}

/// An alias between two known people is a merge, and the store follows it.
pub async fn alias_between_known_people_merges(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    resolve(
        &r,
        json!({"type": "identify", "userId": "rc-old", "anonymousId": "rc-a-old"}),
    )
    .await;
    resolve(&r, json!({"type": "identify", "userId": "rc-new"})).await;
    let target = resolve(
        &r,
        json!({"type": "alias", "previousId": "rc-old", "userId": "rc-new"}),
    )
    .await;
    assert_eq!(
        target,
        merge(Identifier::id("rc-new"), Identifier::id("rc-old"))
    );
    // Messages for the merged person and their anonymousId now reach the primary.
    for value in [
        json!({"type": "track", "userId": "rc-old", "event": "E"}),
        json!({"type": "track", "anonymousId": "rc-a-old", "event": "E"}),
    ] {
        assert_eq!(resolve(&r, value).await, person(Identifier::id("rc-new")));
    }
}

/// An alias whose previousId is an anonymousId linked to another person merges that person.
pub async fn alias_from_linked_anonymous_of_other_person_merges(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    resolve(
        &r,
        json!({"type": "identify", "userId": "rc-other", "anonymousId": "rc-a9"}),
    )
    .await;
    let target = resolve(
        &r,
        json!({"type": "alias", "previousId": "rc-a9", "userId": "rc-main"}),
    )
    .await;
    assert_eq!(
        target,
        merge(Identifier::id("rc-main"), Identifier::id("rc-other"))
    );
    assert_eq!(
        resolve(
            &r,
            json!({"type": "track", "userId": "rc-other", "event": "E"})
        )
        .await,
        person(Identifier::id("rc-main"))
    );
}

/// An alias from an unknown anonymous previousId links it and stitches it into the person.
pub async fn alias_from_unknown_anonymous_links(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let target = resolve(
        &r,
        json!({"type": "alias", "previousId": "rc-a1", "userId": "rc-u1"}),
    )
    .await;
    assert_eq!(target, stitched(Identifier::id("rc-u1"), "rc-a1"));
    assert_eq!(
        resolve(&r, json!({"type": "page", "anonymousId": "rc-a1"})).await,
        person(Identifier::id("rc-u1"))
    );
}

/// The source retrying an alias (its first delivery failed) gets the same merge again.
pub async fn alias_retry_answers_merge_again(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    resolve(&r, json!({"type": "identify", "userId": "rc-old"})).await;
    resolve(&r, json!({"type": "identify", "userId": "rc-new"})).await;
    let alias = json!({"type": "alias", "previousId": "rc-old", "userId": "rc-new"});
    let first = resolve(&r, alias.clone()).await;
    let retry = resolve(&r, alias).await;
    assert_eq!(
        first,
        merge(Identifier::id("rc-new"), Identifier::id("rc-old"))
    );
    assert_eq!(retry, first);
}

/// The source retrying an alias from an unknown anonymousId gets the same stitch again.
pub async fn alias_retry_answers_stitch_again(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    let alias = json!({"type": "alias", "previousId": "rc-a1", "userId": "rc-u1"});
    let first = resolve(&r, alias.clone()).await;
    let retry = resolve(&r, alias).await;
    assert_eq!(first, stitched(Identifier::id("rc-u1"), "rc-a1"));
    assert_eq!(retry, first);
}

/// An alias whose two sides are one person already is skipped: the same id, or the reverse
/// of an earlier merge.
pub async fn alias_of_same_person_is_already_merged(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    assert_eq!(
        resolve(
            &r,
            json!({"type": "alias", "previousId": "rc-u1", "userId": "rc-u1"})
        )
        .await,
        Target::Skip(SkipReason::AlreadyMerged)
    );
    resolve(&r, json!({"type": "identify", "userId": "rc-p"})).await;
    resolve(&r, json!({"type": "identify", "userId": "rc-s"})).await;
    resolve(
        &r,
        json!({"type": "alias", "previousId": "rc-s", "userId": "rc-p"}),
    )
    .await;
    assert_eq!(
        resolve(
            &r,
            json!({"type": "alias", "previousId": "rc-p", "userId": "rc-s"})
        )
        .await,
        Target::Skip(SkipReason::AlreadyMerged)
    );
}

/// A previousId that can only name a person (an email, a `cio_` id) merges even when the
/// store never saw it.
pub async fn alias_from_person_shaped_previous_id_merges(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    assert_eq!(
        resolve(
            &r,
            json!({"type": "alias", "previousId": "rc-old@example.com", "userId": "rc-u1"})
        )
        .await,
        merge(
            Identifier::id("rc-u1"),
            Identifier::email("rc-old@example.com")
        )
    );
    assert_eq!(
        resolve(
            &r,
            json!({"type": "alias", "previousId": "cio_a1b2", "userId": "rc-u1"})
        )
        .await,
        merge(Identifier::id("rc-u1"), Identifier::CioId("a1b2".into()))
    );
    // Later messages carrying the merged email reach the primary.
    assert_eq!(
        resolve(
            &r,
            json!({"type": "track", "event": "E",
                   "context": {"traits": {"email": "rc-old@example.com"}}})
        )
        .await,
        person(Identifier::id("rc-u1"))
    );
}

/// An alias missing either side identifies nobody.
pub async fn alias_missing_a_side_is_no_identity(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    assert_eq!(
        resolve(&r, json!({"type": "alias", "userId": "rc-u1"})).await,
        Target::Skip(SkipReason::NoIdentity)
    );
    assert_eq!(
        resolve(&r, json!({"type": "alias", "previousId": "rc-a1"})).await,
        Target::Skip(SkipReason::NoIdentity)
    );
}

/// A group call resolves the person who belongs to the group, by userId or linked anonymousId.
pub async fn group_resolves_the_person(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    assert_eq!(
        resolve(
            &r,
            json!({"type": "group", "userId": "rc-u1", "groupId": "acct-1",
                   "traits": {"email": "billing@example.com"}})
        )
        .await,
        person(Identifier::id("rc-u1"))
    );
    resolve(
        &r,
        json!({"type": "identify", "userId": "rc-u2", "anonymousId": "rc-a2"}),
    )
    .await;
    assert_eq!(
        resolve(
            &r,
            json!({"type": "group", "anonymousId": "rc-a2", "groupId": "acct-1"})
        )
        .await,
        person(Identifier::id("rc-u2"))
    );
}

/// A delete resolves the person; an unknown anonymousId is never deleted.
pub async fn delete_resolves_the_person(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    assert_eq!(
        resolve(&r, json!({"type": "delete", "userId": "rc-u1"})).await,
        person(Identifier::id("rc-u1"))
    );
    assert_eq!(
        resolve(&r, json!({"type": "delete", "anonymousId": "rc-a-unknown"})).await,
        Target::Skip(SkipReason::AnonymousNotAllowed)
    );
}

/// By default an event with a userId and an anonymousId writes no link.
pub async fn events_do_not_link_by_default(store: Arc<dyn IdentityStore>) {
    let r = resolver(store.clone());
    resolve(
        &r,
        json!({"type": "track", "userId": "rc-u1", "anonymousId": "rc-a1", "event": "E"}),
    )
    .await;
    assert_eq!(
        store
            .resolve(&IdentityKey::AnonymousId("rc-a1".into()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .resolve(&IdentityKey::UserId("rc-u1".into()))
            .await
            .unwrap(),
        None
    );
}

/// With `link_from_events`, an event carrying both ids links them, and its person is known to
/// a later alias.
pub async fn events_link_when_configured(store: Arc<dyn IdentityStore>) {
    let r = StoreResolver::new(store, ResolverConfig::default().with_link_from_events(true));
    resolve(
        &r,
        json!({"type": "track", "userId": "rc-u1", "anonymousId": "rc-a1", "event": "E"}),
    )
    .await;
    assert_eq!(
        resolve(&r, json!({"type": "page", "anonymousId": "rc-a1"})).await,
        person(Identifier::id("rc-u1"))
    );
    resolve(
        &r,
        json!({"type": "track", "userId": "rc-u2", "event": "E"}),
    )
    .await;
    assert_eq!(
        resolve(
            &r,
            json!({"type": "alias", "previousId": "rc-u2", "userId": "rc-u1"})
        )
        .await,
        merge(Identifier::id("rc-u1"), Identifier::id("rc-u2"))
    );
}

/// Links are written only once a message is delivered: an identify whose delivery failed
/// links nothing, and its retry is answered the same way.
pub async fn links_wait_for_delivery(store: Arc<dyn IdentityStore>) {
    let r = resolver(store.clone());
    let identify = json!({"type": "identify", "userId": "rc-u1", "anonymousId": "rc-a1"});
    let first = resolve_undelivered(&r, identify.clone()).await;
    assert_eq!(
        store
            .resolve(&IdentityKey::AnonymousId("rc-a1".into()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        resolve_undelivered(&r, json!({"type": "page", "anonymousId": "rc-a1"})).await,
        Target::Anonymous {
            anonymous_id: "rc-a1".into()
        }
    );
    let retry = resolve(&r, identify).await;
    assert_eq!(retry, first);
    assert_eq!(
        resolve(&r, json!({"type": "page", "anonymousId": "rc-a1"})).await,
        person(Identifier::id("rc-u1"))
    );
}

/// An alias merging the person behind a linked anonymousId, whose delivery failed, is
/// answered with the same merge when the source retries it.
pub async fn alias_retry_after_failed_merge_merges_again(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    resolve(
        &r,
        json!({"type": "identify", "userId": "rc-other", "anonymousId": "rc-a9"}),
    )
    .await;
    let alias = json!({"type": "alias", "previousId": "rc-a9", "userId": "rc-main"});
    let failed = resolve_undelivered(&r, alias.clone()).await;
    let retry = resolve(&r, alias).await;
    assert_eq!(
        failed,
        merge(Identifier::id("rc-main"), Identifier::id("rc-other"))
    );
    assert_eq!(retry, failed);
}

/// Once a delete was delivered, the person's links are forgotten: their old anonymousId no
/// longer reaches them. Before delivery nothing is forgotten, so a retried delete resolves the
/// same way.
pub async fn delivered_delete_forgets_the_person(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    resolve(
        &r,
        json!({"type": "identify", "userId": "rc-u1", "anonymousId": "rc-a1",
               "traits": {"email": "rc-del@example.com"}}),
    )
    .await;
    let delete = message(json!({"type": "delete", "userId": "rc-u1"}));
    let target = r.resolve(&delete).await.unwrap();
    assert_eq!(target, person(Identifier::id("rc-u1")));
    let page = json!({"type": "page", "anonymousId": "rc-a1"});
    assert_eq!(
        resolve(&r, page.clone()).await,
        person(Identifier::id("rc-u1"))
    );
    r.delivered(&delete, &target).await.unwrap();
    assert_eq!(
        resolve(&r, page).await,
        Target::Anonymous {
            anonymous_id: "rc-a1".into()
        }
    );
    assert_eq!(
        resolve(
            &r,
            json!({"type": "track", "event": "E",
                   "context": {"traits": {"email": "rc-del@example.com"}}})
        )
        .await,
        person(Identifier::email("rc-del@example.com"))
    );
}

/// A delivered `User Suppressed` track forgets the person too; an ordinary event does not.
pub async fn delivered_suppression_forgets_the_person(store: Arc<dyn IdentityStore>) {
    let r = resolver(store);
    resolve(
        &r,
        json!({"type": "identify", "userId": "rc-u1", "anonymousId": "rc-a1"}),
    )
    .await;
    let page = json!({"type": "page", "anonymousId": "rc-a1"});
    let ordinary = message(json!({"type": "track", "userId": "rc-u1", "event": "Paid"}));
    let target = r.resolve(&ordinary).await.unwrap();
    r.delivered(&ordinary, &target).await.unwrap();
    assert_eq!(
        resolve(&r, page.clone()).await,
        person(Identifier::id("rc-u1"))
    );
    let suppress =
        message(json!({"type": "track", "anonymousId": "rc-a1", "event": "User Suppressed"}));
    let target = r.resolve(&suppress).await.unwrap();
    r.delivered(&suppress, &target).await.unwrap();
    assert_eq!(
        resolve(&r, page).await,
        Target::Anonymous {
            anonymous_id: "rc-a1".into()
        }
    );
}
