//! The answer metrics every flow reports, under one set of names.
//!
//! With the `metrics` feature, each answer a flow gives is counted and timed through the
//! [`metrics`](https://docs.rs/metrics) facade. The library installs no recorder: a host that
//! wants the numbers installs one (the `cio-sync` server exports them for Prometheus); without
//! one, and without the feature, nothing is recorded.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | [`MESSAGES_TOTAL`] | counter | `flow`, `outcome` |
//! | [`MESSAGE_DURATION_SECONDS`] | histogram, seconds from receipt to answer | `flow` |
//!
//! `flow` is [`triggers`](super::triggers), [`onboarding`](super::onboarding) or
//! [`audience`](super::audience) for the messages the [router](super::router) hands out,
//! [`engagement`](super::engagement) for the back-sync and [`backfill`](super::backfill) for
//! the new-subscriber backfill. `outcome` is the
//! [`answer_label`](crate::outcome::answer_label): `delivered`, `skipped` or `dead_lettered`
//! for an [`Outcome`], `retry_later` or `refused` for an error, by its [`Ack`](crate::outcome::Ack).
//!
//! Each call of a flow's entry point is one answer: a Customer.io webhook handed to both the
//! engagement and the backfill flow is counted once under each `flow`.

use std::time::Instant;

use crate::outcome::{AckRule, Outcome};

/// The counter of answers, labelled `flow` and `outcome`.
pub const MESSAGES_TOTAL: &str = "cio_segment_sync_messages_total";

/// The histogram of the time from receipt to answer, in seconds, labelled `flow`.
pub const MESSAGE_DURATION_SECONDS: &str = "cio_segment_sync_message_duration_seconds";

/// Reports one answer of the flow `flow`, started at `started`, when the `metrics` feature is
/// on; does nothing otherwise.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn record_answer<E: AckRule>(
    flow: &'static str,
    result: &Result<Outcome, E>,
    started: Instant,
) {
    #[cfg(feature = "metrics")]
    {
        ::metrics::counter!(
            MESSAGES_TOTAL,
            "flow" => flow,
            "outcome" => crate::outcome::answer_label(result),
        )
        .increment(1);
        ::metrics::histogram!(MESSAGE_DURATION_SECONDS, "flow" => flow)
            .record(started.elapsed().as_secs_f64());
    }
}
