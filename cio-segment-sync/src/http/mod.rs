//! Framework-free webhook endpoints (feature `http`): verify, decode, run under a deadline,
//! answer by one rule.
//!
//! Two endpoints take a request's headers ([`HeaderMap`](::http::HeaderMap)) and body
//! ([`Bytes`](bytes::Bytes)) and return an [`EndpointResponse`]: a status and a JSON
//! [`AnswerBody`] with counts and the [`Problem`]s met. They depend on the `http` crate's types
//! only, so a host on any web framework (or none) can call them; `axum` hosts mount
//! [`crate::axum::routes`] instead (feature `axum`).
//!
//! - [`SegmentEndpoint`]: a Segment Webhooks destination (classic, or Actions with or without
//!   batching; the body is one event, a bare array or a `{"batch": [...]}` envelope) → any
//!   [`Pipeline`](crate::pipeline::Pipeline) (a router of every flow is itself one);
//! - [`CustomerIoEndpoint`]: a Customer.io reporting webhook → the
//!   [engagement back-sync](crate::flows::engagement) and the
//!   [new-subscriber backfill](crate::flows::backfill).
//!
//! # The work outlives a late answer
//!
//! Each request's work runs in a task spawned on the ambient tokio runtime (the endpoints must
//! be called from within one), and the endpoint waits for it up to its deadline. A request that
//! outlives the deadline is answered 503 and its work is **not** cancelled: it goes on in the
//! background, holding its de-duplication claims until it ends, so the source's retry is
//! answered "in flight" (503 again) while it runs and "duplicate" (a skip) once it finished.
//!
//! # `POST` from Segment
//!
//! Steps: verify `X-Signature` (when a secret is configured) → decode
//! ([`WebhookBody::from_slice_with`](segment_model::webhook::WebhookBody::from_slice_with),
//! item by item) → run the pipeline ([`Pipeline::process`](crate::pipeline::Pipeline::process)
//! for one message, [`Pipeline::process_batch`](crate::pipeline::Pipeline::process_batch) for
//! several) → answer:
//!
//! | situation | status |
//! |---|---|
//! | every item delivered, skipped, or permanently refused and dead-lettered | 200 with counts |
//! | any item must be retried (an error whose [`ack`](crate::outcome::AckRule::ack) is [`Ack::RetryLater`](crate::outcome::Ack::RetryLater): Customer.io down, in flight elsewhere, a store unavailable), or the deadline passed | 503 |
//! | the body cannot be used as a whole (empty, not JSON, too many items, a lone event that does not decode, …) | 400 naming what was wrong |
//! | an item cannot be decoded or is refused ([`Ack::Refuse`](crate::outcome::Ack::Refuse)), others handled | 400 naming each by index |
//! | missing or wrong token (a [`WebhookToken`] is configured) | 401; nothing was run |
//! | bad or missing signature (a secret is configured) | 401; nothing was run |
//!
//! 503 wins over 400: Segment resends the whole request, and the items already delivered are
//! then skipped as duplicates. Segment does not retry a 400, which is why one bad item does not
//! cost its neighbours: they are handled first, and the 400 names only the bad ones.
//!
//! # `POST` from Customer.io
//!
//! Steps: verify `X-CIO-Timestamp` / `X-CIO-Signature` → decode
//! ([`ReportingEvent::from_slice`](customerio_client::webhook::ReportingEvent::from_slice)) →
//! run the configured flows concurrently
//! ([`EngagementFlow::process`](crate::flows::engagement::EngagementFlow::process),
//! [`BackfillFlow::on_event`](crate::flows::backfill::BackfillFlow::on_event)) under the
//! deadline (under Customer.io's 4-second window) → answer:
//!
//! | situation | status |
//! |---|---|
//! | every flow delivered, skipped or dead-lettered | 200 with counts |
//! | authentic, but the body does not decode | 200 naming the problem; recorded as a dead letter when a [`DeadLetterSink`](crate::dead_letter::DeadLetterSink) was given |
//! | a flow refused the event for good ([`Ack::Refuse`](crate::outcome::Ack::Refuse), e.g. untranslatable) | 200 naming the problem; recorded as a dead letter when a sink was given |
//! | a flow must be retried ([`Ack::RetryLater`](crate::outcome::Ack::RetryLater)), the deadline passed, or a dead letter could not be recorded | 503, as soon as it is known |
//! | bad, missing or stale signature | 401; nothing was run |
//!
//! It never answers 400, 429 or 500: Customer.io pauses a webhook for an hour after those, and
//! holds back every later event behind a failing one, so an authentic event no retry could fix
//! is acknowledged (and kept, when a sink is given) rather than refused.
//!
//! # Answers
//!
//! Every answer's body is an [`AnswerBody`] ([`EndpointResponse::to_json_bytes`]), e.g.
//!
//! ```json
//! {"delivered":2,"skipped":0,"dead_lettered":0,"retry_later":0,"refused":1,
//!  "problems":[{"index":1,"kind":"undecodable","message":"item 1: `event`: expected a string, found a number"}]}
//! ```
//!
//! No message holds customer data: each is an error's `Display` and its sources, and the
//! errors of this workspace name fields, paths and positions, never values.
//!
//! Each endpoint counts its answers in an [`EndpointStats`] a host can read for a status page.
//!
//! # In front of the endpoints: shedding, drain, readiness
//!
//! - A [`Gate`] per route sheds a request before its body is read: once the [`Drain`]
//!   started, over an optional [`RequestRate`], or at the concurrency limit
//!   ([`DEFAULT_CONCURRENCY_LIMIT`] requests whose work has not ended). Each is a fast 503
//!   naming why (`shutting_down`, `rate_limited`, `overloaded`), never a queue, never 429 or
//!   500.
//! - A [`Drain`] is the graceful shutdown: new requests 503, those in flight answered or, when
//!   the grace period ends, answered 503; the host then shuts its engine down.
//! - A [`Readiness`] of [`ReadinessCheck`]s answers `GET /readyz`: Redis reachable, no
//!   dispatcher paused or with a full queue, not shutting down
//!   ([`SyncEngine::readiness`](crate::builder::SyncEngine::readiness)).
//!
//! The [`axum`](crate::axum) routes put all three in place; a host on another framework calls
//! [`Gate::admit`] before reading a body and hands the [`WorkPermit`] to
//! [`SegmentEndpoint::handle_holding`] or [`CustomerIoEndpoint::handle_holding`].

mod answer;
mod customerio;
mod drain;
mod gate;
mod readiness;
mod segment;
mod stats;
mod token;

pub use answer::{AnswerBody, EndpointResponse, Problem, ProblemKind};
pub use customerio::{
    CUSTOMERIO_DEAD_LETTER_SINK, CUSTOMERIO_WINDOW, CustomerIoEndpoint, CustomerIoEndpointBuilder,
};
pub use drain::{Drain, DrainPhase, DrainReport};
pub use gate::{Admitted, DEFAULT_CONCURRENCY_LIMIT, Gate, Rejection, RequestRate, WorkPermit};
pub use readiness::{
    CheckReport, NotReady, NotReadyReason, Readiness, ReadinessCheck, ReadinessReport,
};
pub use segment::{SegmentEndpoint, SegmentEndpointBuilder};
pub use stats::{EndpointStats, EndpointStatsSnapshot};
pub use token::{TOKEN_HEADER, TokenError, TokenRefusal, WebhookToken};

use std::time::Duration;

/// An endpoint was configured with a value it cannot work with. Nothing is clamped: the value
/// is refused and named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointConfigError {
    /// A deadline of zero would answer 503 to every request.
    #[error("the {endpoint} endpoint's deadline must be longer than zero")]
    ZeroDeadline {
        /// `Segment` or `Customer.io`.
        endpoint: &'static str,
    },
    /// The Customer.io endpoint's deadline is not under Customer.io's 4-second window.
    #[error(
        "the Customer.io endpoint's deadline must be under {} ms (Customer.io's window); it is {} ms",
        CUSTOMERIO_WINDOW.as_millis(),
        deadline.as_millis()
    )]
    OutsideCustomerIoWindow {
        /// The deadline asked for.
        deadline: Duration,
    },
    /// The Customer.io endpoint was given neither an engagement flow nor a backfill flow.
    #[error("the Customer.io endpoint needs an engagement flow, a backfill flow or both")]
    NoFlow,
    /// A [`RequestRate`]'s period is too short for its number of requests (under a
    /// nanosecond each).
    #[error("a request rate's period must leave at least a nanosecond per request")]
    ZeroRatePeriod,
}

pub(crate) use crate::outcome::describe;
#[cfg_attr(not(feature = "axum"), allow(unused_imports))]
pub(crate) use gate::count_rejection;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Chains(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("the body is not JSON")]
    struct Json(#[source] serde_json::Error);

    #[test]
    fn sources_are_written_once() {
        assert_eq!(describe(&Repeats(Inner)), "outer: inner");
        assert_eq!(describe(&Chains(Inner)), "outer: inner");
    }

    #[test]
    fn serde_json_sources_are_named_by_category_only() {
        let error = serde_json::from_str::<u8>("\"ada@example.com\"").unwrap_err();
        assert!(error.to_string().contains("ada@example.com"));
        let text = describe(&Json(error));
        assert!(!text.contains("ada@"), "{text}");
        assert!(text.starts_with("the body is not JSON: "), "{text}");
    }

    #[test]
    fn config_errors_name_the_value() {
        let error = EndpointConfigError::OutsideCustomerIoWindow {
            deadline: Duration::from_millis(4500),
        };
        assert_eq!(
            error.to_string(),
            "the Customer.io endpoint's deadline must be under 4000 ms (Customer.io's window); it is 4500 ms"
        );
    }
}
