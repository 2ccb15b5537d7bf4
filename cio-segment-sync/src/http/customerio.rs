//! The endpoint of Customer.io's reporting webhooks.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use customerio_client::webhook::{ReportingEvent, SignatureVerifier};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;

use super::answer::{AnswerBody, EndpointResponse, Problem, ProblemKind};
use super::gate::WorkPermit;
use super::stats::EndpointStats;
use super::{EndpointConfigError, describe};
use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetterSink};
use crate::dispatch::FailureKind;
use crate::flows::backfill::BackfillFlow;
use crate::flows::engagement::EngagementFlow;
use crate::outcome::{Ack, AckRule, Outcome};

/// Customer.io's answer window for reporting webhooks: it gives up on a request after 4 s.
pub const CUSTOMERIO_WINDOW: Duration = Duration::from_secs(4);

/// The [`DeadLetter::sink`] of the authentic reporting-webhook events this endpoint keeps
/// because they cannot be used (undecodable, or refused by a flow). The entry's `item` is the
/// event's JSON (the body as a JSON string when it is not JSON at all).
pub const CUSTOMERIO_DEAD_LETTER_SINK: &str = "customerio.reporting_webhook";

/// The endpoint of Customer.io's reporting webhooks, over the
/// [engagement back-sync](crate::flows::engagement), the
/// [new-subscriber backfill](crate::flows::backfill), or both. See the [module docs](super)
/// for the steps and the answer table.
pub struct CustomerIoEndpoint {
    engagement: Option<Arc<EngagementFlow>>,
    backfill: Option<Arc<BackfillFlow>>,
    verifier: SignatureVerifier,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    deadline: Duration,
    stats: EndpointStats,
}

impl fmt::Debug for CustomerIoEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerIoEndpoint")
            .field("engagement", &self.engagement.is_some())
            .field("backfill", &self.backfill.is_some())
            .field("verifier", &self.verifier)
            .field("dead_letters", &self.dead_letters)
            .field("deadline", &self.deadline)
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

/// Builds a [`CustomerIoEndpoint`]; from [`CustomerIoEndpoint::builder`].
pub struct CustomerIoEndpointBuilder {
    engagement: Option<Arc<EngagementFlow>>,
    backfill: Option<Arc<BackfillFlow>>,
    verifier: SignatureVerifier,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
    deadline: Duration,
}

impl fmt::Debug for CustomerIoEndpointBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerIoEndpointBuilder")
            .field("engagement", &self.engagement.is_some())
            .field("backfill", &self.backfill.is_some())
            .field("verifier", &self.verifier)
            .field("dead_letters", &self.dead_letters)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl CustomerIoEndpointBuilder {
    /// Hands every event to `flow` ([`EngagementFlow::process`]).
    #[must_use]
    pub fn engagement(mut self, flow: Arc<EngagementFlow>) -> Self {
        self.engagement = Some(flow);
        self
    }

    /// Hands every event to `flow` ([`BackfillFlow::on_event`]).
    #[must_use]
    pub fn backfill(mut self, flow: Arc<BackfillFlow>) -> Self {
        self.backfill = Some(flow);
        self
    }

    /// Keeps the authentic events that cannot be used (undecodable, or refused by a flow) in
    /// `sink`, under [`CUSTOMERIO_DEAD_LETTER_SINK`]. They are answered 200 either way (a 4xx
    /// would pause Customer.io's webhooks); without a sink they are only named in the answer
    /// and counted. An entry the sink fails to keep is answered 503, so Customer.io sends the
    /// event again.
    #[must_use]
    pub fn dead_letters(mut self, sink: Arc<dyn DeadLetterSink>) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// How long a request waits for the flows before it is answered 503 (default
    /// [`CustomerIoEndpoint::DEFAULT_DEADLINE`]); must be under [`CUSTOMERIO_WINDOW`]. The
    /// work is not cancelled at the deadline.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The endpoint.
    ///
    /// # Errors
    ///
    /// [`EndpointConfigError::NoFlow`] without a flow,
    /// [`EndpointConfigError::ZeroDeadline`] or
    /// [`EndpointConfigError::OutsideCustomerIoWindow`] for a deadline of zero or of
    /// [`CUSTOMERIO_WINDOW`] or more.
    pub fn build(self) -> Result<CustomerIoEndpoint, EndpointConfigError> {
        if self.engagement.is_none() && self.backfill.is_none() {
            return Err(EndpointConfigError::NoFlow);
        }
        if self.deadline.is_zero() {
            return Err(EndpointConfigError::ZeroDeadline {
                endpoint: "Customer.io",
            });
        }
        if self.deadline >= CUSTOMERIO_WINDOW {
            return Err(EndpointConfigError::OutsideCustomerIoWindow {
                deadline: self.deadline,
            });
        }
        Ok(CustomerIoEndpoint {
            engagement: self.engagement,
            backfill: self.backfill,
            verifier: self.verifier,
            dead_letters: self.dead_letters,
            deadline: self.deadline,
            stats: EndpointStats::new(),
        })
    }
}

/// Which flow a result is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Engagement,
    Backfill,
}

impl Flow {
    fn name(self) -> &'static str {
        match self {
            Flow::Engagement => "engagement",
            Flow::Backfill => "backfill",
        }
    }
}

/// How one flow's run ended, as the endpoint counts it.
#[derive(Debug)]
enum FlowEnd {
    /// Finished.
    Finished(Outcome),
    /// Refused for good; `kept` when this endpoint recorded it as a dead letter.
    Refused { message: String, kept: bool },
    /// Not finished: the source must send it again.
    RetryLater(String),
}

impl CustomerIoEndpoint {
    /// The default deadline, 3 s: inside Customer.io's 4-second window with room for the
    /// answer to travel.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3);

    /// A builder checking signatures with `verifier` (required: Customer.io signs every
    /// reporting webhook), with [`DEFAULT_DEADLINE`](Self::DEFAULT_DEADLINE). Give it at least
    /// one flow.
    pub fn builder(verifier: SignatureVerifier) -> CustomerIoEndpointBuilder {
        CustomerIoEndpointBuilder {
            engagement: None,
            backfill: None,
            verifier,
            dead_letters: None,
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

    /// Handles one request: its headers and its body exactly as received, the signature's
    /// time window checked against the system clock. See the [module docs](super) for the
    /// answer table.
    ///
    /// Must be called within a tokio runtime: the flows run in spawned tasks, so that work
    /// outliving the deadline goes on in the background.
    pub async fn handle(&self, headers: &HeaderMap, body: Bytes) -> EndpointResponse {
        self.handle_at(headers, body, SystemTime::now()).await
    }

    /// [`handle`](Self::handle), with `now` the current time for the signature's time window.
    pub async fn handle_at(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        now: SystemTime,
    ) -> EndpointResponse {
        self.handle_holding_at(headers, body, now, WorkPermit::none())
            .await
    }

    /// [`handle`](Self::handle), holding `work` (a place under a [`Gate`](super::Gate)'s
    /// concurrency limit) until the flows' work ends, also when it outlives the deadline.
    pub async fn handle_holding(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        work: WorkPermit,
    ) -> EndpointResponse {
        self.handle_holding_at(headers, body, SystemTime::now(), work)
            .await
    }

    async fn handle_holding_at(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        now: SystemTime,
        work: WorkPermit,
    ) -> EndpointResponse {
        let response = self.answer(headers, &body, now, work).await;
        self.stats.record(&response);
        response
    }

    async fn answer(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
        work: WorkPermit,
    ) -> EndpointResponse {
        if let Err(error) = self.verifier.verify_headers(headers, body, now) {
            tracing::debug!(error = %describe(&error), "Refused a Customer.io webhook: bad signature.");
            return EndpointResponse::new(
                StatusCode::UNAUTHORIZED,
                AnswerBody::problem(ProblemKind::Signature, describe(&error)),
            );
        }
        let event = match ReportingEvent::from_slice(body) {
            Ok(event) => Arc::new(event),
            Err(error) => return self.undecodable(body, &error).await,
        };
        let mut answer = AnswerBody::new();
        let mut running = FuturesUnordered::new();
        if let Some(flow) = &self.engagement {
            let (flow, event, sink) = (flow.clone(), event.clone(), self.dead_letters.clone());
            // Each task holds `work` until it ends, past the deadline too.
            let work = work.clone();
            let task = tokio::spawn(async move {
                let _work = work;
                let result = flow.process(&event).await;
                end(Flow::Engagement, result, &event, sink.as_deref()).await
            });
            running.push(joined(Flow::Engagement, task));
        }
        if let Some(flow) = &self.backfill {
            let (flow, event, sink) = (flow.clone(), event.clone(), self.dead_letters.clone());
            // Each task holds `work` until it ends, past the deadline too.
            let work = work.clone();
            let task = tokio::spawn(async move {
                let _work = work;
                let result = flow.on_event(&event).await;
                end(Flow::Backfill, result, &event, sink.as_deref()).await
            });
            running.push(joined(Flow::Backfill, task));
        }
        let mut finished: Vec<Flow> = Vec::new();
        let mut late = false;
        let deadline = tokio::time::sleep(self.deadline);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = running.next() => {
                    let Some((flow, joined)) = next else { break };
                    let end = joined.unwrap_or_else(|error| {
                        FlowEnd::RetryLater(format!(
                            "{} flow: its task failed ({})",
                            flow.name(),
                            if error.is_panic() { "it panicked" } else { "it was cancelled" }
                        ))
                    });
                    let retry = matches!(end, FlowEnd::RetryLater(_));
                    finished.push(flow);
                    count(&mut answer, end);
                    if retry {
                        // 503 now: the other flow goes on in the background, and Customer.io's
                        // retry finds it finished (a duplicate) or in flight.
                        break;
                    }
                }
                () = &mut deadline => {
                    late = true;
                    break;
                }
            }
        }
        if late {
            let millis = self.deadline.as_millis();
            tracing::info!(
                deadline_ms = u64::try_from(millis).unwrap_or(u64::MAX),
                "A Customer.io webhook outlived its deadline; it goes on in the background."
            );
            for flow in self.configured().filter(|flow| !finished.contains(flow)) {
                answer.retry_later(Problem::new(
                    None,
                    ProblemKind::Deadline,
                    format!(
                        "{} flow: not finished within {millis} ms; it goes on in the background",
                        flow.name()
                    ),
                ));
            }
        }
        // Only 200 or 503 from here: the request is authentic, and a 4xx, a 429 or a 500
        // would pause Customer.io's webhook for an hour.
        let status = if answer.retry_later > 0 {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        EndpointResponse::new(status, answer)
    }

    fn configured(&self) -> impl Iterator<Item = Flow> + '_ {
        self.engagement
            .as_ref()
            .map(|_| Flow::Engagement)
            .into_iter()
            .chain(self.backfill.as_ref().map(|_| Flow::Backfill))
    }

    /// An authentic body that does not decode: 200 (a retry could never succeed, and
    /// Customer.io would hold back every later event behind it), kept when a sink is given.
    async fn undecodable(
        &self,
        body: &[u8],
        error: &customerio_client::webhook::PayloadError,
    ) -> EndpointResponse {
        let message = describe(error);
        tracing::warn!(error = %message, "An authentic Customer.io webhook does not decode; acknowledged.");
        let mut answer = AnswerBody::new();
        let problem = Problem::new(None, ProblemKind::Undecodable, message.clone());
        let Some(sink) = &self.dead_letters else {
            answer.refused(problem);
            return EndpointResponse::new(StatusCode::OK, answer);
        };
        let item = serde_json::from_slice::<Value>(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        match keep(sink.as_ref(), item, message).await {
            Ok(()) => {
                answer.dead_lettered += 1;
                answer.problems.push(problem);
                EndpointResponse::new(StatusCode::OK, answer)
            }
            Err(not_kept) => {
                answer.retry_later(problem);
                answer
                    .problems
                    .push(Problem::new(None, ProblemKind::RetryLater, not_kept));
                EndpointResponse::new(StatusCode::SERVICE_UNAVAILABLE, answer)
            }
        }
    }
}

/// Waits for a flow's task. Dropping this future detaches the task: it goes on.
async fn joined(
    flow: Flow,
    task: tokio::task::JoinHandle<FlowEnd>,
) -> (Flow, Result<FlowEnd, tokio::task::JoinError>) {
    (flow, task.await)
}

/// Counts one flow's end.
fn count(answer: &mut AnswerBody, end: FlowEnd) {
    match end {
        FlowEnd::Finished(outcome) => answer.count(&outcome),
        FlowEnd::Refused { message, kept } => {
            let problem = Problem::new(None, ProblemKind::Refused, message);
            if kept {
                answer.dead_lettered += 1;
                answer.problems.push(problem);
            } else {
                answer.refused(problem);
            }
        }
        FlowEnd::RetryLater(message) => {
            answer.retry_later(Problem::new(None, ProblemKind::RetryLater, message));
        }
    }
}

/// What the endpoint makes of a flow's answer: a refusal is kept in `sink` when one is given.
async fn end<E>(
    flow: Flow,
    result: Result<Outcome, E>,
    event: &ReportingEvent,
    sink: Option<&dyn DeadLetterSink>,
) -> FlowEnd
where
    E: AckRule + std::error::Error + 'static,
{
    let error = match result {
        Ok(outcome) => return FlowEnd::Finished(outcome),
        Err(error) => error,
    };
    let message = format!("{} flow: {}", flow.name(), describe(&error));
    match error.ack() {
        Ack::RetryLater => FlowEnd::RetryLater(message),
        Ack::Refuse => {
            let Some(sink) = sink else {
                return FlowEnd::Refused {
                    message,
                    kept: false,
                };
            };
            let item = serde_json::to_value(event).unwrap_or(Value::Null);
            match keep(sink, item, message.clone()).await {
                Ok(()) => FlowEnd::Refused {
                    message,
                    kept: true,
                },
                Err(not_kept) => FlowEnd::RetryLater(format!("{message}; {not_kept}")),
            }
        }
    }
}

/// Records an authentic event that cannot be used; `Err` names why it was not kept.
async fn keep(sink: &dyn DeadLetterSink, item: Value, message: String) -> Result<(), String> {
    let reason = DeadLetterReason::Failed {
        kind: FailureKind::Permanent,
        error: message,
    };
    let entry = DeadLetter::new(CUSTOMERIO_DEAD_LETTER_SINK, item, reason, 0);
    sink.record(entry).await.map_err(|error| {
        tracing::warn!(error = %describe(&error), "An unusable Customer.io webhook event could not be kept; asking Customer.io to retry.");
        format!("its dead letter was not recorded: {}", describe(&error))
    })
}

#[cfg(test)]
mod tests {
    use customerio_client::webhook::WebhookSigningKey;

    use super::*;

    fn verifier() -> SignatureVerifier {
        SignatureVerifier::new(WebhookSigningKey::new("key").unwrap())
    }

    /// The endpoint is shared by every request of a server, and its future runs on any
    /// worker thread. Checked at compile time.
    #[allow(dead_code)]
    fn endpoint_and_its_future_are_send_and_sync(endpoint: &CustomerIoEndpoint) {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<CustomerIoEndpoint>();
        fn send<T: Send>(_: &T) {}
        let headers = HeaderMap::new();
        send(&endpoint.handle(&headers, Bytes::new()));
    }

    #[test]
    fn an_endpoint_without_a_flow_is_refused() {
        let error = CustomerIoEndpoint::builder(verifier()).build().unwrap_err();
        assert_eq!(error, EndpointConfigError::NoFlow);
    }
}
