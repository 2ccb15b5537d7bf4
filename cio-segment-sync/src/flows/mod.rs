//! Ready-made flows: one module per use case, each built from the four traits
//! ([`Deduper`](crate::dedupe::Deduper), [`LoopGuard`](crate::loop_guard::LoopGuard),
//! [`IdentityResolver`](crate::identity::IdentityResolver), [`Pipeline`](crate::pipeline::Pipeline))
//! and the [dispatcher](crate::dispatch).
//!
//! - [`triggers`]: behavioural triggers and profile enrichment, Segment → Customer.io;
//! - [`onboarding`]: onboarding milestones that only ever move a person forwards;
//! - [`churn`]: churn prevention — activity per person and a scan every interval (on one
//!   replica at a time, by a lease), which enrols inactive people into re-engagement (an event
//!   and an attribute in Customer.io) and notices when they come back;
//! - [`audience`]: audience sync — Segment Engage audience enter/exit → Customer.io manual
//!   segment add/remove, newest change first;
//! - [`engagement`]: engagement back-sync — verified Customer.io reporting webhooks → Segment
//!   `track` events named by the Email, Push and a documented SMS table, loop-guarded;
//! - [`backfill`]: new-subscriber backfill — a person's traits read from Segment's Profile API
//!   and written to Customer.io;
//! - [`forget`]: deletion and suppression, in Customer.io and in every store of the flows.
//!
//! Every flow's configuration is a serde struct with documented defaults, so a host can load
//! it from TOML. Each Segment-input flow is a folder, `flows/<name>/`: `mod.rs` holds the flow,
//! `config.rs` its settings and their validation (re-exported from the flow's module). With the
//! `metrics` feature every flow reports its answers under the same metric names, with a `flow`
//! label ([`metrics`]).

pub mod audience;
pub mod backfill;
pub mod churn;
pub mod engagement;
pub mod forget;
pub mod metrics;
pub mod onboarding;
pub mod router;
pub mod triggers;

#[cfg(test)]
mod send_lock {
    //! Compile-time locks: the flows' futures are `Send` and the flows and store traits are
    //! `Send + Sync` and object safe. If one stops holding, this module stops compiling.

    use std::future::Future;
    use std::sync::Arc;

    use segment_model::Message;

    use super::forget::{Forget, ForgetAction, ForgetFlow};
    use super::onboarding::{OnboardingFlow, ProgressStore};
    use super::triggers::SegmentToCustomerIo;
    use crate::pipeline::Pipeline;

    fn assert_send<F: Future + Send>(_future: F) {}

    fn send_sync<T: Send + Sync + ?Sized>() {}

    #[allow(dead_code)] // Only compiled, never run: the bounds are the test.
    fn futures_are_send(
        triggers: SegmentToCustomerIo,
        onboarding: OnboardingFlow,
        forget: ForgetFlow,
        progress: Arc<dyn ProgressStore>,
        store: Arc<dyn Forget>,
        message: Message,
    ) {
        assert_send(async move {
            let _ = triggers.process(&message).await;
            let _ = triggers.process_slice(b"{}").await;
            let _ = triggers.process_batch_slice(b"{}").await;
            let _ = triggers
                .process_batch(segment_model::Batch::default())
                .await;
            triggers.shutdown().await;
            let _ = onboarding.process(&message).await;
            let _ = forget.process(&message).await;
            let _ = forget.forget("u", ForgetAction::Delete).await;
            let _ = progress.advance("p", 1).await;
            let _ = progress.get("p").await;
            let _ = progress.forget("p").await;
            let _ = store.forget("p").await;
        });
    }

    #[test]
    fn flows_and_stores_are_send_and_sync() {
        send_sync::<SegmentToCustomerIo>();
        send_sync::<OnboardingFlow>();
        send_sync::<ForgetFlow>();
        send_sync::<dyn ProgressStore>();
        send_sync::<dyn Forget>();
    }

    #[allow(dead_code)] // Only compiled: the onboarding flow is a `dyn Pipeline`.
    fn onboarding_is_a_pipeline(flow: OnboardingFlow) -> Arc<dyn Pipeline> {
        Arc::new(flow)
    }
}
