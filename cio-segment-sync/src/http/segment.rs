//! The endpoint of a Segment Webhooks destination.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::http::{HeaderMap, HeaderValue, StatusCode};
use bytes::Bytes;
use segment_model::Message;
use segment_model::webhook::signature::SIGNATURE_HEADER;
use segment_model::webhook::{WebhookBody, WebhookLimits, WebhookVerifier};

use super::answer::{AnswerBody, EndpointResponse, Problem, ProblemKind};
use super::gate::WorkPermit;
use super::stats::EndpointStats;
use super::token::WebhookToken;
use super::{EndpointConfigError, describe};
use crate::outcome::{Ack, AckRule};
use crate::pipeline::{Pipeline, PipelineError};

/// The endpoint of a Segment Webhooks destination, over any [`Pipeline`]. See the
/// [module docs](super) for the steps and the answer table.
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use bytes::Bytes;
/// use http::{HeaderMap, StatusCode};
/// use cio_segment_sync::http::{ProblemKind, SegmentEndpoint};
/// use cio_segment_sync::outcome::{Outcome, SkipReason};
/// use cio_segment_sync::pipeline::{Pipeline, PipelineError};
/// use cio_segment_sync::segment_model::Message;
///
/// /// Delivers every track and skips everything else (a real host passes its router of flows).
/// #[derive(Debug)]
/// struct TracksOnly;
///
/// #[async_trait]
/// impl Pipeline for TracksOnly {
///     async fn process(&self, message: &Message) -> Result<Outcome, PipelineError> {
///         Ok(match message.event() {
///             Some(_) => Outcome::Delivered,
///             None => Outcome::Skipped(SkipReason::Filtered),
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let endpoint = SegmentEndpoint::builder(Arc::new(TracksOnly)).build()?;
/// let body = Bytes::from_static(br#"[
///     {"type": "track", "messageId": "m-1", "userId": "u-1", "event": "Signed Up"},
///     {"type": "identify", "messageId": "m-2", "userId": "u-1"},
///     {"type": "track", "messageId": "m-3", "userId": "u-1", "event": 42}
/// ]"#);
/// let answer = endpoint.handle(&HeaderMap::new(), body).await;
///
/// // Two items were handled; the third does not decode, and Segment does not retry a 400.
/// assert_eq!(answer.status, StatusCode::BAD_REQUEST);
/// assert_eq!((answer.body.delivered, answer.body.skipped, answer.body.refused), (1, 1, 1));
/// let problem = &answer.body.problems[0];
/// assert_eq!((problem.index, problem.kind), (Some(2), ProblemKind::Undecodable));
/// assert_eq!(problem.message, "item 2 does not decode: `event`: expected a string, found a number");
/// # Ok(())
/// # }
/// ```
pub struct SegmentEndpoint {
    pipeline: Arc<dyn Pipeline>,
    token: Option<WebhookToken>,
    verifier: Option<WebhookVerifier>,
    limits: WebhookLimits,
    deadline: Duration,
    stats: EndpointStats,
}

impl fmt::Debug for SegmentEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentEndpoint")
            .field("pipeline", &self.pipeline)
            .field("requires_token", &self.token.is_some())
            // The verifier's own `Debug` redacts the secret; whether one is set is enough here.
            .field("verifies_signatures", &self.verifier.is_some())
            .field("limits", &self.limits)
            .field("deadline", &self.deadline)
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

/// Builds a [`SegmentEndpoint`]; from [`SegmentEndpoint::builder`].
pub struct SegmentEndpointBuilder {
    pipeline: Arc<dyn Pipeline>,
    token: Option<WebhookToken>,
    verifier: Option<WebhookVerifier>,
    limits: WebhookLimits,
    deadline: Duration,
}

impl fmt::Debug for SegmentEndpointBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentEndpointBuilder")
            .field("pipeline", &self.pipeline)
            .field("requires_token", &self.token.is_some())
            .field("verifies_signatures", &self.verifier.is_some())
            .field("limits", &self.limits)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl SegmentEndpointBuilder {
    /// Requires `token` on every request, as `Authorization: Bearer <token>` or
    /// `X-Webhook-Token: <token>` (set it as a custom header of the destination); a request
    /// without it is answered 401 before anything else is checked. Segment signs only the
    /// first event of a batched request, so the token is what authenticates the rest.
    #[must_use]
    pub fn token(mut self, token: WebhookToken) -> Self {
        self.token = Some(token);
        self
    }

    /// Checks `X-Signature` on every request with `verifier` (Segment's shared secret); a
    /// request without a valid one is answered 401. Without a verifier, requests are not
    /// checked (configure a shared secret in Segment and set it here in production).
    #[must_use]
    pub fn verifier(mut self, verifier: WebhookVerifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// The limits a body must respect (default [`WebhookLimits::default`]: 4000 items, the
    /// largest batch Segment sends).
    #[must_use]
    pub fn limits(mut self, limits: WebhookLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How long a request waits for its items before it is answered 503 (default
    /// [`SegmentEndpoint::DEFAULT_DEADLINE`]). The work is not cancelled at the deadline.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The endpoint.
    ///
    /// # Errors
    ///
    /// [`EndpointConfigError::ZeroDeadline`] for a deadline of zero.
    pub fn build(self) -> Result<SegmentEndpoint, EndpointConfigError> {
        if self.deadline.is_zero() {
            return Err(EndpointConfigError::ZeroDeadline {
                endpoint: "Segment",
            });
        }
        Ok(SegmentEndpoint {
            pipeline: self.pipeline,
            token: self.token,
            verifier: self.verifier,
            limits: self.limits,
            deadline: self.deadline,
            stats: EndpointStats::new(),
        })
    }
}

impl SegmentEndpoint {
    /// The default deadline, 4 s: Segment's classic Webhooks destination gives an endpoint 5 s
    /// (Webhooks (Actions) 10 s), and an answer must leave before Segment gives up on it.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(4);

    /// A builder running every message through `pipeline`, with no signature check, the
    /// default limits and [`DEFAULT_DEADLINE`](Self::DEFAULT_DEADLINE).
    pub fn builder(pipeline: Arc<dyn Pipeline>) -> SegmentEndpointBuilder {
        SegmentEndpointBuilder {
            pipeline,
            token: None,
            verifier: None,
            limits: WebhookLimits::default(),
            deadline: Self::DEFAULT_DEADLINE,
        }
    }

    /// The deadline in force.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The counters of this endpoint's answers.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Handles one request: its headers and its body exactly as received. See the
    /// [module docs](super) for the answer table.
    ///
    /// Must be called within a tokio runtime: the pipeline runs in a spawned task, so that
    /// work outliving the deadline goes on in the background.
    pub async fn handle(&self, headers: &HeaderMap, body: Bytes) -> EndpointResponse {
        self.handle_holding(headers, body, WorkPermit::none()).await
    }

    /// [`handle`](Self::handle), holding `work` (a place under a [`Gate`](super::Gate)'s
    /// concurrency limit) until the request's work ends, also when it outlives the deadline.
    pub async fn handle_holding(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        work: WorkPermit,
    ) -> EndpointResponse {
        let response = self.answer(headers, &body, work).await;
        self.stats.record(&response);
        response
    }

    async fn answer(&self, headers: &HeaderMap, body: &[u8], work: WorkPermit) -> EndpointResponse {
        if let Some(token) = &self.token
            && let Err(refusal) = token.verify(headers)
        {
            tracing::debug!(%refusal, "Refused a Segment webhook: bad token.");
            return EndpointResponse::new(
                StatusCode::UNAUTHORIZED,
                AnswerBody::problem(ProblemKind::Token, refusal.to_string()),
            );
        }
        if let Some(verifier) = &self.verifier {
            let header = headers.get(SIGNATURE_HEADER).map(HeaderValue::as_bytes);
            if let Err(error) = verifier.verify(header, body) {
                tracing::debug!(error = %describe(&error), "Refused a Segment webhook: bad signature.");
                return EndpointResponse::new(
                    StatusCode::UNAUTHORIZED,
                    AnswerBody::problem(ProblemKind::Signature, describe(&error)),
                );
            }
        }
        let decoded = match WebhookBody::from_slice_with(body, self.limits) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::debug!(error = %describe(&error), "Refused a Segment webhook: the body cannot be used.");
                return EndpointResponse::new(
                    StatusCode::BAD_REQUEST,
                    AnswerBody::problem(ProblemKind::Undecodable, describe(&error)),
                );
            }
        };
        let mut answer = AnswerBody::new();
        for error in &decoded.errors {
            answer.refused(Problem::new(
                Some(error.index),
                ProblemKind::Undecodable,
                describe(error),
            ));
        }
        let (indexes, messages): (Vec<usize>, Vec<Message>) = decoded.messages.into_iter().unzip();
        if !messages.is_empty() {
            self.run(&indexes, messages, &mut answer, work).await;
        }
        answer.sort_problems();
        let status = if answer.retry_later > 0 {
            StatusCode::SERVICE_UNAVAILABLE
        } else if answer.refused > 0 {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        EndpointResponse::new(status, answer)
    }

    /// Runs the pipeline in a spawned task, waits for it up to the deadline, and counts how
    /// each message ended.
    async fn run(
        &self,
        indexes: &[usize],
        messages: Vec<Message>,
        answer: &mut AnswerBody,
        work: WorkPermit,
    ) {
        let count = messages.len();
        let pipeline = Arc::clone(&self.pipeline);
        // Spawned, so that work outliving the deadline goes on (its claims held) instead of
        // being dropped half-way. It holds `work` until it ends.
        let task = tokio::spawn(async move {
            let _work = work;
            match messages.as_slice() {
                [message] => vec![pipeline.process(message).await],
                _ => pipeline.process_batch(messages).await,
            }
        });
        let results = match tokio::time::timeout(self.deadline, task).await {
            Ok(Ok(results)) => results,
            Ok(Err(error)) => {
                tracing::warn!(
                    messages = count,
                    panicked = error.is_panic(),
                    "A Segment webhook's delivery task failed; asking Segment to retry."
                );
                answer.retry_later += count;
                answer.problems.push(Problem::new(
                    None,
                    ProblemKind::Internal,
                    format!(
                        "the delivery task of {count} message(s) failed ({})",
                        if error.is_panic() {
                            "it panicked"
                        } else {
                            "it was cancelled"
                        }
                    ),
                ));
                return;
            }
            Err(_elapsed) => {
                let millis = self.deadline.as_millis();
                tracing::info!(
                    messages = count,
                    deadline_ms = u64::try_from(millis).unwrap_or(u64::MAX),
                    "A Segment webhook outlived its deadline; it goes on in the background."
                );
                answer.retry_later += count;
                answer.problems.push(Problem::new(
                    None,
                    ProblemKind::Deadline,
                    format!(
                        "{count} message(s) were not finished within {millis} ms; they go on in \
                         the background"
                    ),
                ));
                return;
            }
        };
        let mut results = results.into_iter();
        for &index in indexes {
            match results.next() {
                Some(Ok(outcome)) => answer.count(&outcome),
                Some(Err(error)) => record_error(answer, index, &error),
                None => answer.retry_later(Problem::new(
                    Some(index),
                    ProblemKind::RetryLater,
                    "the pipeline gave no answer for this item",
                )),
            }
        }
    }
}

fn record_error(answer: &mut AnswerBody, index: usize, error: &PipelineError) {
    let message = format!("item {index}: {}", describe(error));
    match error.ack() {
        Ack::RetryLater => {
            answer.retry_later(Problem::new(Some(index), ProblemKind::RetryLater, message));
        }
        Ack::Refuse => answer.refused(Problem::new(Some(index), ProblemKind::Refused, message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;

    /// The endpoint is shared by every request of a server.
    #[test]
    fn endpoint_and_its_future_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<SegmentEndpoint>();
        fn send<T: Send>(_: &T) {}
        #[derive(Debug)]
        struct Never;
        #[async_trait::async_trait]
        impl Pipeline for Never {
            async fn process(&self, _: &Message) -> Result<Outcome, PipelineError> {
                Err(PipelineError::InFlight)
            }
        }
        let endpoint = SegmentEndpoint::builder(Arc::new(Never)).build().unwrap();
        let headers = HeaderMap::new();
        send(&endpoint.handle(&headers, Bytes::new()));
    }

    #[test]
    fn a_zero_deadline_is_refused() {
        #[derive(Debug)]
        struct Never;
        #[async_trait::async_trait]
        impl Pipeline for Never {
            async fn process(&self, _: &Message) -> Result<Outcome, PipelineError> {
                Err(PipelineError::InFlight)
            }
        }
        let error = SegmentEndpoint::builder(Arc::new(Never))
            .deadline(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(
            error,
            EndpointConfigError::ZeroDeadline {
                endpoint: "Segment"
            }
        );
    }
}
