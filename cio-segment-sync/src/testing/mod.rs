//! Conformance suites for the store traits and the dead-letter stores (feature `testing`).
//!
//! Each trait has one suite: a module of `pub async fn` cases taking the store as a trait
//! object, and a macro that generates one `#[tokio::test]` per case for an implementation. Run
//! it against your own implementation to check it behaves like ours:
//!
//! ```text
//! // in your crate's tests, with `cio-segment-sync = { features = ["testing"] }` and tokio
//! // (macros, rt-multi-thread) as dev-dependencies:
//! cio_segment_sync::deduper_conformance!(my_store, async { MyDeduper::connect_for_tests().await });
//! ```
//!
//! The constructor expression is evaluated once per test, so every case gets a fresh store
//! (for shared backends such as Redis: give each one its own key prefix).
//!
//! [`RecordingServer`] is a local HTTP server for dry runs and hosts' own tests: it records
//! every request (method, path, headers, body) and answers from a script of replies.

pub mod activity;
pub mod dead_letter;
pub mod dedupe;
pub mod identity;
pub mod lease;
pub mod membership;
pub mod progress;
pub mod rate_limit;
pub mod recent_ids;
pub mod recording;
#[cfg(feature = "redis")]
pub mod redis_server;
pub mod resolver;

pub use recording::{
    InvalidReply, RecordedHeaders, RecordedRequest, RecordingServer, ScriptedReply,
};

/// Generates the [`Deduper`](crate::dedupe::Deduper) conformance suite as a module `$name`
/// holding one test per case. `$make` is an `async` expression returning the store (anything
/// implementing `Deduper`).
#[macro_export]
macro_rules! deduper_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_cases!(
                $make,
                $crate::testing::dedupe,
                [
                    first_claim_is_first,
                    held_key_is_in_flight,
                    committed_key_is_done,
                    released_key_is_delivered_again,
                    failed_delivery_then_retry_is_delivered,
                    expired_lease_frees_the_key,
                    stale_token_cannot_commit_over_new_holder,
                    stale_token_cannot_release_new_holder,
                    commit_after_expiry_without_new_holder_is_done,
                    keys_are_independent,
                    concurrent_claims_have_one_winner,
                    commit_is_idempotent,
                    renewed_lease_outlives_its_first_term,
                    renew_takes_back_a_lapsed_free_key,
                    stale_token_cannot_renew_over_new_holder,
                    renew_of_a_done_key_is_refused,
                ]
            );
        }
    };
}

/// Generates the [`RateLimiter`](crate::rate_limit::RateLimiter) conformance suite as a module
/// `$name` holding one test per case. `$make` is an `async` expression returning a limiter
/// that admits [`rate_limit::RATE`] attempts per second with a burst of as many.
#[macro_export]
macro_rules! rate_limiter_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_cases!(
                $make,
                $crate::testing::rate_limit,
                [
                    grants_the_burst_then_waits,
                    a_pause_grants_nothing,
                    a_shorter_pause_keeps_the_longer,
                    a_longer_pause_extends_the_shorter,
                    an_ended_pause_grants_again,
                ]
            );
        }
    };
}

/// Generates the [`IdentityStore`](crate::identity::IdentityStore) conformance suite as a
/// module `$name` holding one test per case.
#[macro_export]
macro_rules! identity_store_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_cases!(
                $make,
                $crate::testing::identity,
                [
                    unknown_key_is_none,
                    link_then_resolve,
                    relink_reports_previous_person,
                    merge_moves_every_key,
                    merge_chains_without_cycles,
                    merge_of_unknown_people_is_recorded,
                    forget_removes_every_key_of_the_person,
                ]
            );
        }
    };
}

/// Generates the [`ActivityStore`](crate::activity::ActivityStore) conformance suite as a
/// module `$name` holding one test per case.
#[macro_export]
macro_rules! activity_store_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_cases!(
                $make,
                $crate::testing::activity,
                [
                    record_keeps_the_latest,
                    inactive_listing_is_ordered_and_strict,
                    paging_visits_everyone_once,
                    enroll_once_then_reactivate,
                    enroll_loses_to_racing_activity,
                    unknown_person_is_not_enrolled,
                    forget_removes_the_person,
                ]
            );
        }
    };
}

/// Generates the [`LeaseStore`](crate::store::LeaseStore) conformance suite as a module
/// `$name` holding one test per case. Some cases wait (in real time) for a short lease to
/// expire.
#[macro_export]
macro_rules! lease_store_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_cases!(
                $make,
                $crate::testing::lease,
                [
                    free_lease_is_acquired,
                    held_lease_is_refused_to_others,
                    holder_acquires_again_and_extends,
                    released_lease_is_free,
                    release_by_another_holder_changes_nothing,
                    expired_lease_is_taken_over,
                    renewal_extends_the_lease,
                    renewal_is_for_the_holder_only,
                    stale_holder_cannot_touch_the_new_lease,
                    names_are_independent,
                    concurrent_acquisitions_have_one_winner,
                ]
            );
        }
    };
}

/// Generates the [`ProgressStore`](crate::flows::onboarding::ProgressStore) conformance suite
/// as a module `$name` holding one test per case.
#[macro_export]
macro_rules! progress_store_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_cases!(
                $make,
                $crate::testing::progress,
                [
                    unknown_person_has_no_progress,
                    advance_never_moves_backwards,
                    people_are_independent,
                    forget_removes_the_person,
                    concurrent_advances_keep_the_maximum,
                ]
            );
        }
    };
}

/// Generates the [`RecentIds`](crate::loop_guard::RecentIds) conformance suite as a module
/// `$name` holding one test per case.
#[macro_export]
macro_rules! recent_ids_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_cases!(
                $make,
                $crate::testing::recent_ids,
                [
                    unknown_id_is_absent,
                    remembered_id_is_present,
                    ids_are_independent,
                    id_expires,
                    remember_again_extends,
                ]
            );
        }
    };
}

/// Generates the [`StoreResolver`](crate::identity::StoreResolver) rule suite over an
/// [`IdentityStore`](crate::identity::IdentityStore) as a module `$name` holding one test per
/// rule. `$make` is an `async` expression returning the store; each test wraps a fresh one in
/// an `Arc` and builds the resolver itself. Use it to check the default identity rules hold on
/// top of your own store.
#[macro_export]
macro_rules! store_resolver_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__resolver_cases!(
                $make,
                [
                    user_id_is_id,
                    numeric_user_id_is_id,
                    cio_prefixed_user_id_is_cio_id,
                    email_shaped_user_id_is_email,
                    email_shaped_user_id_is_id_when_configured,
                    blank_ids_are_no_identity,
                    identify_falls_back_to_traits_email,
                    event_falls_back_to_context_email,
                    unknown_anonymous_event_is_anonymous,
                    anonymous_not_allowed_when_configured,
                    no_identity_is_skipped,
                    identify_carries_anonymous_id,
                    identify_links_anonymous_id,
                    identify_links_email,
                    anonymous_identify_unknown_is_skipped,
                    anonymous_identify_linked_is_person,
                    alias_between_known_people_merges,
                    alias_from_linked_anonymous_of_other_person_merges,
                    alias_from_unknown_anonymous_links,
                    alias_retry_answers_merge_again,
                    alias_retry_answers_stitch_again,
                    alias_of_same_person_is_already_merged,
                    alias_from_person_shaped_previous_id_merges,
                    alias_missing_a_side_is_no_identity,
                    group_resolves_the_person,
                    delete_resolves_the_person,
                    events_do_not_link_by_default,
                    events_link_when_configured,
                    links_wait_for_delivery,
                    alias_retry_after_failed_merge_merges_again,
                    delivered_delete_forgets_the_person,
                    delivered_suppression_forgets_the_person,
                ]
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __resolver_cases {
    ($make:expr, [$($case:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store: ::std::sync::Arc<dyn $crate::identity::IdentityStore> =
                    ::std::sync::Arc::new($make.await);
                $crate::testing::resolver::$case(store).await;
            }
        )*
    };
}

/// Generates the [`MembershipStore`](crate::flows::audience::MembershipStore) conformance
/// suite as a module `$name` holding one test per case.
#[macro_export]
macro_rules! membership_store_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_cases!(
                $make,
                $crate::testing::membership,
                [
                    newer_wins_older_loses,
                    ties_break_by_tiebreak,
                    repeat_of_the_newest_is_accepted,
                    people_and_audiences_are_independent,
                    any_order_ends_at_the_newest,
                    concurrent_records_keep_the_newest,
                    forget_removes_every_audience_of_the_person,
                ]
            );
        }
    };
}

/// Generates the dead-letter store conformance suite as a module `$name` holding one test per
/// case, for a store implementing both
/// [`DeadLetterSink`](crate::dead_letter::DeadLetterSink) and
/// [`DeadLetterStore`](crate::dead_letter::DeadLetterStore). `$make` is an `async` expression
/// returning a fresh, empty store (keeping at least 40 records).
#[macro_export]
macro_rules! dead_letter_store_conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_cases!(
                $make,
                $crate::testing::dead_letter,
                [
                    empty_store_has_nothing_pending,
                    appended_records_read_back_oldest_first,
                    dispatcher_entries_are_kept_as_records,
                    marked_records_are_no_longer_pending,
                    keys_stay_the_same_as_records_are_added,
                    concurrent_appends_are_all_kept,
                    a_large_record_reads_back_whole,
                ]
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($make:expr, $suite:path, [$($case:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make.await;
                use $suite as suite;
                suite::$case(&store).await;
            }
        )*
    };
}

#[async_trait::async_trait]
impl<S, G> crate::rate_limit::RateLimiter for Guarded<S, G>
where
    S: crate::rate_limit::RateLimiter,
    G: std::fmt::Debug + Send + Sync + 'static,
{
    async fn try_acquire(&self) -> Result<crate::rate_limit::Admission, crate::StoreError> {
        self.store.try_acquire().await
    }

    async fn pause(&self, delay: std::time::Duration) -> Result<(), crate::StoreError> {
        self.store.pause(delay).await
    }
}

/// A store kept together with something that must outlive it in a test (a temporary server,
/// a directory). It implements the store traits by delegating to `store`, so a conformance
/// macro can be given `async { Guarded { store, guard } }`.
#[derive(Debug)]
pub struct Guarded<S, G> {
    /// The store under test.
    pub store: S,
    /// Dropped after the store.
    pub guard: G,
}

#[async_trait::async_trait]
impl<S, G> crate::dedupe::Deduper for Guarded<S, G>
where
    S: crate::dedupe::Deduper,
    G: std::fmt::Debug + Send + Sync + 'static,
{
    async fn claim(
        &self,
        key: &str,
        lease: std::time::Duration,
    ) -> Result<crate::dedupe::Claim, crate::StoreError> {
        self.store.claim(key, lease).await
    }

    async fn commit(
        &self,
        key: &str,
        token: &crate::dedupe::ClaimToken,
    ) -> Result<(), crate::StoreError> {
        self.store.commit(key, token).await
    }

    async fn renew(
        &self,
        key: &str,
        token: &crate::dedupe::ClaimToken,
        lease: std::time::Duration,
    ) -> Result<bool, crate::StoreError> {
        self.store.renew(key, token, lease).await
    }

    async fn release(
        &self,
        key: &str,
        token: &crate::dedupe::ClaimToken,
    ) -> Result<(), crate::StoreError> {
        self.store.release(key, token).await
    }
}

#[async_trait::async_trait]
impl<S, G> crate::activity::ActivityStore for Guarded<S, G>
where
    S: crate::activity::ActivityStore,
    G: std::fmt::Debug + Send + Sync + 'static,
{
    async fn record(
        &self,
        person: &str,
        at: i64,
    ) -> Result<crate::activity::Recorded, crate::StoreError> {
        self.store.record(person, at).await
    }

    async fn inactive_since(
        &self,
        before: i64,
        after: Option<&crate::activity::Cursor>,
        limit: usize,
    ) -> Result<crate::activity::InactivePage, crate::StoreError> {
        self.store.inactive_since(before, after, limit).await
    }

    async fn enroll(&self, person: &str, last_active: i64) -> Result<bool, crate::StoreError> {
        self.store.enroll(person, last_active).await
    }

    async fn get(&self, person: &str) -> Result<Option<(i64, bool)>, crate::StoreError> {
        self.store.get(person).await
    }

    async fn forget(&self, person: &str) -> Result<bool, crate::StoreError> {
        self.store.forget(person).await
    }
}

#[async_trait::async_trait]
impl<S, G> crate::store::LeaseStore for Guarded<S, G>
where
    S: crate::store::LeaseStore,
    G: std::fmt::Debug + Send + Sync + 'static,
{
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, crate::StoreError> {
        self.store.try_acquire(name, holder, ttl).await
    }

    async fn renew(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, crate::StoreError> {
        self.store.renew(name, holder, ttl).await
    }

    async fn release(&self, name: &str, holder: &str) -> Result<bool, crate::StoreError> {
        self.store.release(name, holder).await
    }
}

#[async_trait::async_trait]
impl<S, G> crate::loop_guard::RecentIds for Guarded<S, G>
where
    S: crate::loop_guard::RecentIds,
    G: std::fmt::Debug + Send + Sync + 'static,
{
    async fn remember(&self, id: &str, ttl: std::time::Duration) -> Result<(), crate::StoreError> {
        self.store.remember(id, ttl).await
    }

    async fn contains(&self, id: &str) -> Result<bool, crate::StoreError> {
        self.store.contains(id).await
    }
}

#[async_trait::async_trait]
impl<S, G> crate::identity::IdentityStore for Guarded<S, G>
where
    S: crate::identity::IdentityStore,
    G: std::fmt::Debug + Send + Sync + 'static,
{
    async fn link(
        &self,
        user_id: &str,
        keys: &[crate::identity::IdentityKey],
    ) -> Result<crate::identity::LinkOutcome, crate::StoreError> {
        self.store.link(user_id, keys).await
    }

    async fn resolve(
        &self,
        key: &crate::identity::IdentityKey,
    ) -> Result<Option<String>, crate::StoreError> {
        self.store.resolve(key).await
    }

    async fn merge(&self, primary: &str, secondary: &str) -> Result<(), crate::StoreError> {
        self.store.merge(primary, secondary).await
    }

    async fn forget(&self, user_id: &str) -> Result<usize, crate::StoreError> {
        self.store.forget(user_id).await
    }
}

#[async_trait::async_trait]
impl<S, G> crate::flows::onboarding::ProgressStore for Guarded<S, G>
where
    S: crate::flows::onboarding::ProgressStore,
    G: std::fmt::Debug + Send + Sync + 'static,
{
    async fn advance(
        &self,
        person: &str,
        step: u32,
    ) -> Result<crate::flows::onboarding::Advance, crate::StoreError> {
        self.store.advance(person, step).await
    }

    async fn get(&self, person: &str) -> Result<Option<u32>, crate::StoreError> {
        self.store.get(person).await
    }

    async fn forget(&self, person: &str) -> Result<bool, crate::StoreError> {
        self.store.forget(person).await
    }
}

#[async_trait::async_trait]
impl<S, G> crate::flows::audience::MembershipStore for Guarded<S, G>
where
    S: crate::flows::audience::MembershipStore,
    G: std::fmt::Debug + Send + Sync + 'static,
{
    async fn record_if_newer(
        &self,
        person: &str,
        audience: &str,
        change: &crate::flows::audience::MembershipChange,
    ) -> Result<bool, crate::StoreError> {
        self.store.record_if_newer(person, audience, change).await
    }

    async fn get(
        &self,
        person: &str,
        audience: &str,
    ) -> Result<Option<crate::flows::audience::MembershipChange>, crate::StoreError> {
        self.store.get(person, audience).await
    }

    async fn forget(&self, person: &str) -> Result<usize, crate::StoreError> {
        self.store.forget(person).await
    }
}

#[async_trait::async_trait]
impl<S, G> crate::dead_letter::DeadLetterSink for Guarded<S, G>
where
    S: crate::dead_letter::DeadLetterSink,
    G: std::fmt::Debug + Send + Sync + 'static,
{
    async fn append(
        &self,
        record: crate::dead_letter::Record,
    ) -> Result<(), crate::dead_letter::DeadLetterError> {
        self.store.append(record).await
    }

    async fn record(
        &self,
        entry: crate::dead_letter::DeadLetter,
    ) -> Result<(), crate::dead_letter::DeadLetterError> {
        self.store.record(entry).await
    }
}

#[async_trait::async_trait]
impl<S, G> crate::dead_letter::DeadLetterStore for Guarded<S, G>
where
    S: crate::dead_letter::DeadLetterStore,
    G: std::fmt::Debug + Send + Sync + 'static,
{
    async fn pending(
        &self,
    ) -> Result<crate::dead_letter::Listing, crate::dead_letter::DeadLetterError> {
        self.store.pending().await
    }

    async fn mark_replayed(
        &self,
        keys: &[crate::dead_letter::RecordKey],
    ) -> Result<(), crate::dead_letter::DeadLetterError> {
        self.store.mark_replayed(keys).await
    }

    async fn pending_count(&self) -> Result<u64, crate::dead_letter::DeadLetterError> {
        self.store.pending_count().await
    }

    fn location(&self) -> String {
        self.store.location()
    }
}
