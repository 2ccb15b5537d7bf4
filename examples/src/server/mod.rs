//! The `webhook_server` example's router, handlers and state, kept in the library target so
//! the integration tests drive the very same code over HTTP.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /segment` | a Segment Webhooks destination request (one event object, or a JSON array when batching is on) → the Segment → Customer.io flows ([`SegmentFlows`]: triggers and deletions, onboarding milestones, audience changes) |
//! | `POST /customerio` | a Customer.io reporting webhook → [`EngagementFlow`] (back to Segment) and [`BackfillFlow`] (on `subscribed`) |
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | Prometheus text rendered from the flows' counters |
//! | `GET /` | a small HTML status page |
//!
//! # Answers
//!
//! `POST /segment` answers 200 only once every event of the request was delivered to
//! Customer.io, skipped or dead-lettered; 503 when that did not happen within
//! [`Deadlines::segment`] (Segment retries 5xx for hours, and the pipeline's de-duplication
//! makes the retry safe); 401 when `X-Signature` does not match; 400 when the body is not a
//! Segment event or batch (the JSON body `{"message": …}` names the problem and the item index,
//! never its content). In a batch, an item that does not decode is answered 400 only after the
//! other items were handled: Segment does not retry a 400, so refusing the whole batch would
//! lose the good events with the bad one. The work of a request that runs past its deadline
//! is not cancelled: it runs to its end in the background, and Segment's retry finds it
//! finished (or still in flight, 503).
//!
//! `POST /customerio` checks `X-CIO-Signature` and `X-CIO-Timestamp` first (401 when they do
//! not match or are too old), then runs both flows and answers 200 once both finished, 503 when
//! either must be retried or did not finish within [`Deadlines::customerio`] (kept under
//! Customer.io's 4-second window). It never answers 429 or 500: Customer.io pauses a webhook for
//! an hour after those. An authentic body that does not decode is answered 200 (a retry could
//! never succeed, and Customer.io would hold back every later event behind it) and counted as
//! a failure on the status page.
//!
//! `GET /metrics` is rendered by hand from the flows' own counter snapshots
//! ([`PipelineStats`](cio_segment_sync::pipeline::PipelineStats), the dispatchers' stats, the
//! engagement and backfill stats) rather than through a `metrics-exporter-prometheus` recorder:
//! a recorder is process-wide, while these numbers belong to one [`ServerState`], so tests can
//! run several servers in one process and read each one's counters. Names start `cio_sync_`.
//!
//! Request bodies are limited to [`DEFAULT_BODY_LIMIT`] (Segment documents batches of up to
//! 4000 events but no byte size; change it with [`ServerStateBuilder::body_limit`]); a larger
//! body is answered 413.
//!
//! Build the state with [`ServerState::builder`] (or from the environment with
//! [`settings::Settings`]), then serve [`router`].
//!
//! ```
//! use std::sync::Arc;
//! use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
//! use cio_segment_sync::flows::triggers::{SegmentToCustomerIo, TriggersConfig};
//! use examples::server::{ServerState, router};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = TrackClient::new(
//!     SiteId::new("site-id"),
//!     TrackApiKey::new("track-api-key"),
//!     ClientConfig::new(Region::Us),
//! )?;
//! let (flow, worker) = SegmentToCustomerIo::new(client, TriggersConfig::default());
//! let worker = tokio::spawn(worker);
//! let state = Arc::new(ServerState::builder(Arc::new(flow)).build());
//! let app = router(state.clone());
//! // axum::serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?, app).await?;
//! # drop(app);
//! state.shutdown().await;
//! worker.await?;
//! # Ok(())
//! # }
//! ```

pub mod settings;
mod status;

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use cio_segment_sync::customerio_client::webhook::{
    ReportingEvent, SIGNATURE_HEADER, SignatureVerifier, TIMESTAMP_HEADER,
};
use cio_segment_sync::dispatch::DispatcherHandle;
use cio_segment_sync::dispatch::sinks::SegmentTrackingSink;
use cio_segment_sync::flows::backfill::BackfillFlow;
use cio_segment_sync::flows::churn::{ChurnError, ChurnMonitor};
use cio_segment_sync::flows::engagement::EngagementFlow;
use cio_segment_sync::flows::triggers::SegmentToCustomerIo;
use cio_segment_sync::identity::IdentityResolver;
use cio_segment_sync::outcome::AckRule;
use cio_segment_sync::segment_model::Message;
use cio_segment_sync::segment_model::signature::WebhookVerifier;
use serde_json::json;
use serde_json::value::RawValue;

use crate::flows::{FlowName, FlowResult, SegmentFlows};

/// The header Segment's Webhooks destinations put the signature in.
pub const SEGMENT_SIGNATURE_HEADER: &str = "x-signature";

/// The default largest request body, in bytes (8 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// How many recent failures the status page lists.
pub const RECENT_FAILURES: usize = 20;

/// Customer.io's answer window for reporting webhooks.
pub const CUSTOMERIO_WINDOW: Duration = Duration::from_secs(4);

/// How long each webhook route waits for delivery before answering 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    segment: Duration,
    customerio: Duration,
}

/// A deadline that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeadlineError {
    /// A deadline of zero answers 503 to everything.
    #[error("the {route} deadline must be longer than zero")]
    Zero {
        /// Which route.
        route: Route,
    },
    /// The `/customerio` deadline is not under Customer.io's 4-second window.
    #[error("the POST /customerio deadline must be under 4 seconds (Customer.io's window)")]
    CustomerIoWindow,
}

impl Deadlines {
    /// `segment` for `POST /segment`, `customerio` (under 4 s) for `POST /customerio`.
    ///
    /// # Errors
    ///
    /// [`DeadlineError`] for a zero deadline or a `customerio` deadline of 4 s or more.
    pub fn new(segment: Duration, customerio: Duration) -> Result<Self, DeadlineError> {
        if segment.is_zero() {
            return Err(DeadlineError::Zero {
                route: Route::Segment,
            });
        }
        if customerio.is_zero() {
            return Err(DeadlineError::Zero {
                route: Route::CustomerIo,
            });
        }
        if customerio >= CUSTOMERIO_WINDOW {
            return Err(DeadlineError::CustomerIoWindow);
        }
        Ok(Self {
            segment,
            customerio,
        })
    }

    /// `POST /segment`'s deadline. Default 4 s: Segment's classic webhooks give an endpoint
    /// 5 s.
    pub fn segment(&self) -> Duration {
        self.segment
    }

    /// `POST /customerio`'s deadline. Default 3 s, inside Customer.io's 4-second window.
    pub fn customerio(&self) -> Duration {
        self.customerio
    }
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            segment: Duration::from_secs(4),
            customerio: Duration::from_secs(3),
        }
    }
}

/// Which route a failure happened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /segment`.
    Segment,
    /// `POST /customerio`.
    CustomerIo,
    /// The periodic churn scan.
    ChurnScan,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Route::Segment => "POST /segment",
            Route::CustomerIo => "POST /customerio",
            Route::ChurnScan => "churn scan",
        })
    }
}

/// One recent failure, as the status page shows it: no customer data, only the route, the
/// status answered and the error's text (which the library keeps free of ids and emails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Unix seconds.
    pub at: u64,
    /// Where.
    pub route: Route,
    /// The status answered (0 for the churn scan).
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

/// Request counters of the two webhook routes.
#[derive(Debug, Default)]
struct RouteCounters {
    ok: AtomicU64,
    retry_later: AtomicU64,
    refused: AtomicU64,
    bad_request: AtomicU64,
}

impl RouteCounters {
    fn count(&self, status: StatusCode) {
        let counter = match status.as_u16() {
            200..=299 => &self.ok,
            401 => &self.refused,
            400 => &self.bad_request,
            _ => &self.retry_later,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What became of the messages `POST /segment` handled, per flow.
#[derive(Debug, Default)]
struct FlowCounters {
    /// `[flow][result]`: flows in [`FLOWS`] order, results in [`RESULTS`] order.
    counts: [[AtomicU64; 4]; 3],
}

const FLOWS: [FlowName; 3] = [FlowName::Triggers, FlowName::Onboarding, FlowName::Audience];
const RESULTS: [&str; 4] = ["delivered", "skipped", "dead_lettered", "failed"];

impl FlowCounters {
    fn count(&self, flow: FlowName, result: &FlowResult) {
        let row = FLOWS.iter().position(|f| *f == flow).unwrap_or(0);
        let column = match result {
            FlowResult::Delivered => 0,
            FlowResult::Skipped(_) => 1,
            FlowResult::DeadLettered(_) => 2,
            _ => 3,
        };
        self.counts[row][column].fetch_add(1, Ordering::Relaxed);
    }

    /// `(flow, result, count)` for every pair.
    fn snapshot(&self) -> Vec<(FlowName, &'static str, u64)> {
        let mut out = Vec::with_capacity(12);
        for (row, flow) in FLOWS.iter().enumerate() {
            for (column, result) in RESULTS.iter().enumerate() {
                out.push((
                    *flow,
                    *result,
                    self.counts[row][column].load(Ordering::Relaxed),
                ));
            }
        }
        out
    }
}

/// The churn monitor and the resolver that finds whose activity a message is.
#[derive(Clone)]
struct ChurnHook {
    monitor: Arc<ChurnMonitor>,
    resolver: Arc<dyn IdentityResolver>,
}

impl ChurnHook {
    /// Records each delivered message as activity. Best effort: a failure is logged and does
    /// not change the webhook's answer (the message itself was delivered).
    async fn observe(&self, messages: &[Message], results: &[(FlowName, FlowResult)]) {
        let now = unix_now();
        for (message, (_, result)) in messages.iter().zip(results) {
            if *result != FlowResult::Delivered {
                continue;
            }
            let observed = match self.resolver.resolve(message).await {
                Ok(target) => self
                    .monitor
                    .observe(message, &target, now)
                    .await
                    .map(drop)
                    .map_err(|error| error_chain(&error)),
                Err(error) => Err(error_chain(&error)),
            };
            if let Err(error) = observed {
                tracing::warn!(error = %error, "Could not record a message as activity.");
            }
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Everything the handlers share. Built by [`ServerState::builder`].
pub struct ServerState {
    flows: Arc<SegmentFlows>,
    flow_counters: FlowCounters,
    segment_verifier: Option<WebhookVerifier>,
    customerio_verifier: Option<SignatureVerifier>,
    engagement: Option<Arc<EngagementFlow>>,
    engagement_dispatcher: Option<DispatcherHandle<SegmentTrackingSink>>,
    backfill: Option<Arc<BackfillFlow>>,
    churn: Option<ChurnHook>,
    deadlines: Deadlines,
    segment_requests: RouteCounters,
    customerio_requests: RouteCounters,
    churn_enrolled: AtomicU64,
    churn_failed: AtomicU64,
    recent: Mutex<VecDeque<Failure>>,
    started: Instant,
    body_limit: usize,
}

impl fmt::Debug for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The verifiers hold secrets; only say whether they are set.
        f.debug_struct("ServerState")
            .field("flows", &self.flows)
            .field(
                "segment_signature_checked",
                &self.segment_verifier.is_some(),
            )
            .field("customerio_route", &self.customerio_verifier.is_some())
            .field("engagement", &self.engagement.is_some())
            .field("backfill", &self.backfill.is_some())
            .field("churn", &self.churn.is_some())
            .field("deadlines", &self.deadlines)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ServerState`]. Only the Segment → Customer.io flow is required.
pub struct ServerStateBuilder {
    state: ServerState,
}

impl fmt::Debug for ServerStateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerStateBuilder")
            .field("state", &self.state)
            .finish()
    }
}

impl ServerStateBuilder {
    /// Checks `X-Signature` on `POST /segment` with `verifier`. Without one, every body is
    /// accepted (only sensible behind another authentication layer).
    pub fn segment_verifier(mut self, verifier: WebhookVerifier) -> Self {
        self.state.segment_verifier = Some(verifier);
        self
    }

    /// Serves `POST /customerio`, checking requests with `verifier`. Without it the route is
    /// not mounted (404). With it but with neither [`engagement`](Self::engagement) nor
    /// [`backfill`](Self::backfill), authentic events are acknowledged and nothing is done.
    pub fn customerio_verifier(mut self, verifier: SignatureVerifier) -> Self {
        self.state.customerio_verifier = Some(verifier);
        self
    }

    /// Runs the engagement back-sync on every reporting webhook; `dispatcher` is the handle of
    /// the flow's Segment dispatcher, read for the status page.
    pub fn engagement(
        mut self,
        flow: Arc<EngagementFlow>,
        dispatcher: DispatcherHandle<SegmentTrackingSink>,
    ) -> Self {
        self.state.engagement = Some(flow);
        self.state.engagement_dispatcher = Some(dispatcher);
        self
    }

    /// Runs the new-subscriber backfill on every reporting webhook.
    pub fn backfill(mut self, flow: Arc<BackfillFlow>) -> Self {
        self.state.backfill = Some(flow);
        self
    }

    /// The churn monitor: every message `POST /segment` delivered is recorded as activity of
    /// the person `resolver` finds for it (pass the resolver the Segment flow uses), and
    /// [`ServerState::churn_scan`] enrols the inactive.
    pub fn churn(
        mut self,
        monitor: Arc<ChurnMonitor>,
        resolver: Arc<dyn IdentityResolver>,
    ) -> Self {
        self.state.churn = Some(ChurnHook { monitor, resolver });
        self
    }

    /// How long the webhook routes wait for delivery.
    pub fn deadlines(mut self, deadlines: Deadlines) -> Self {
        self.state.deadlines = deadlines;
        self
    }

    /// The largest request body accepted, in bytes (default [`DEFAULT_BODY_LIMIT`]).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.state.body_limit = bytes;
        self
    }

    /// The state.
    pub fn build(self) -> ServerState {
        self.state
    }
}

impl ServerState {
    /// A builder around the Segment → Customer.io flows (whose workers the host runs): a
    /// [`SegmentFlows`], or only the triggers flow (`Arc<SegmentToCustomerIo>`).
    pub fn builder(flows: impl Into<SegmentFlows>) -> ServerStateBuilder {
        ServerStateBuilder {
            state: ServerState {
                flows: Arc::new(flows.into()),
                flow_counters: FlowCounters::default(),
                segment_verifier: None,
                customerio_verifier: None,
                engagement: None,
                engagement_dispatcher: None,
                backfill: None,
                churn: None,
                deadlines: Deadlines::default(),
                segment_requests: RouteCounters::default(),
                customerio_requests: RouteCounters::default(),
                churn_enrolled: AtomicU64::new(0),
                churn_failed: AtomicU64::new(0),
                recent: Mutex::new(VecDeque::with_capacity(RECENT_FAILURES)),
                started: Instant::now(),
                body_limit: DEFAULT_BODY_LIMIT,
            },
        }
    }

    /// The Segment → Customer.io triggers flow.
    pub fn triggers(&self) -> &SegmentToCustomerIo {
        self.flows.triggers()
    }

    /// Every Segment → Customer.io flow.
    pub fn flows(&self) -> &SegmentFlows {
        &self.flows
    }

    /// The most recent failures, newest first (at most [`RECENT_FAILURES`]).
    pub fn recent_failures(&self) -> Vec<Failure> {
        self.recent
            .lock()
            .map(|recent| recent.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn record_failure(&self, route: Route, status: u16, message: String) {
        tracing::warn!(route = %route, status, error = %message, "A request was not completed.");
        let at = u64::try_from(unix_now()).unwrap_or(0);
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == RECENT_FAILURES {
                recent.pop_back();
            }
            recent.push_front(Failure {
                at,
                route,
                status,
                message,
            });
        }
    }

    /// Runs one full churn scan at `now` (Unix seconds): every page of inactive people, each
    /// enrolled through the Customer.io dispatcher. Returns how many were enrolled; `Ok(0)`
    /// without a churn monitor. The binary calls this on a tokio interval.
    ///
    /// # Errors
    ///
    /// The store could not list candidates; people enrolled before that stay enrolled.
    pub async fn churn_scan(&self, now: i64) -> Result<usize, ChurnError> {
        let Some(ChurnHook { monitor: churn, .. }) = &self.churn else {
            return Ok(0);
        };
        let mut enrolled = 0;
        let mut cursor = None;
        loop {
            let report = match churn.scan(now, cursor.as_ref()).await {
                Ok(report) => report,
                Err(error) => {
                    self.record_failure(Route::ChurnScan, 0, error_chain(&error));
                    return Err(error);
                }
            };
            enrolled += report.enrolled;
            self.churn_enrolled
                .fetch_add(report.enrolled as u64, Ordering::Relaxed);
            self.churn_failed
                .fetch_add(report.failed as u64, Ordering::Relaxed);
            if report.failed > 0 {
                self.record_failure(
                    Route::ChurnScan,
                    0,
                    format!("{} people could not be enrolled", report.failed),
                );
            }
            match report.next {
                Some(next) => cursor = Some(next),
                None => return Ok(enrolled),
            }
        }
    }

    /// Sends what the flows' dispatchers hold and waits for it (call at exit, after the
    /// server stopped accepting requests).
    pub async fn shutdown(&self) {
        self.flows.shutdown().await;
        if let Some(dispatcher) = &self.engagement_dispatcher {
            dispatcher.shutdown().await;
        }
    }
}

/// The server's routes over `state`. See the [module docs](self).
pub fn router(state: Arc<ServerState>) -> Router {
    let mut router = Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/segment", post(segment));
    if state.customerio_verifier.is_some() {
        router = router.route("/customerio", post(customerio));
    }
    let limit = DefaultBodyLimit::max(state.body_limit);
    router.layer(limit).with_state(state)
}

/// The error and its sources, joined with `: `, with quoted values blanked
/// ([`redact_quoted`]). Every error text the server answers or shows goes through here.
fn error_chain(error: &dyn std::error::Error) -> String {
    redact_quoted(&crate::flows::with_sources(error))
}

fn answer(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "message": message.into() }))).into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        status::prometheus(&state),
    )
        .into_response()
}

async fn status_page(State(state): State<Arc<ServerState>>) -> Html<String> {
    Html(status::html(&state))
}

/// Why a `POST /segment` body was refused with 400. Names the problem and where, never the
/// content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentBodyError {
    /// The body is not a JSON array of values (batched delivery).
    #[error("the body starts with '[' but is not a JSON array: {0}")]
    NotAnArray(String),
    /// The batch is empty.
    #[error("the batch array is empty")]
    EmptyBatch,
    /// One event could not be decoded.
    #[error("event at index {index} is not a Segment message: {reason}")]
    Item {
        /// The item's index in the array (0 for a single event).
        index: usize,
        /// What was wrong: names the JSON path; quoted values are blanked.
        reason: String,
    },
}

/// `text` with every double-quoted part blanked to `"…"`. The library's decode errors name the
/// JSON path in backticks, but a few quote the offending value (an unknown `type`, a JSON
/// string of the wrong type), which may be personal data and must not reach Segment's
/// debugger or the status page.
fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        if c == '"' {
            if !inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

fn item_error(index: usize, error: &cio_segment_sync::segment_model::Error) -> SegmentBodyError {
    SegmentBodyError::Item {
        index,
        reason: error_chain(error),
    }
}

/// A `POST /segment` body, decoded item by item.
#[derive(Debug, Default)]
struct Decoded {
    /// The events that decoded, with their index in the body.
    events: Vec<(usize, Message)>,
    /// The items that did not ([`SegmentBodyError::Item`]).
    undecodable: Vec<SegmentBodyError>,
}

/// Decodes a single event or a batch array. `Err` when the body as a whole is unusable (a
/// single event that does not decode, not an array, an empty array); in a batch, each item
/// that does not decode is kept in [`Decoded::undecodable`] and the others are still handled,
/// so one bad event does not cost its neighbours (Segment does not retry a 400).
fn decode_body(body: &[u8]) -> Result<Decoded, SegmentBodyError> {
    let batched = body
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|byte| *byte == b'[');
    if !batched {
        let message = Message::from_slice(body).map_err(|error| item_error(0, &error))?;
        return Ok(Decoded {
            events: vec![(0, message)],
            undecodable: Vec::new(),
        });
    }
    let items: Vec<Box<RawValue>> = serde_json::from_slice(body)
        .map_err(|error| SegmentBodyError::NotAnArray(json_error_position(&error)))?;
    if items.is_empty() {
        return Err(SegmentBodyError::EmptyBatch);
    }
    let mut decoded = Decoded::default();
    for (index, item) in items.iter().enumerate() {
        match Message::from_slice(item.get().as_bytes()) {
            Ok(message) => decoded.events.push((index, message)),
            Err(error) => decoded.undecodable.push(item_error(index, &error)),
        }
    }
    Ok(decoded)
}

/// A serde_json error's category and position, without the snippet of input some of its
/// messages quote.
fn json_error_position(error: &serde_json::Error) -> String {
    let category = match error.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "not an array of JSON values",
        serde_json::error::Category::Eof => "unexpected end of input",
    };
    format!(
        "{category} at line {} column {}",
        error.line(),
        error.column()
    )
}

async fn segment(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = segment_inner(&state, &headers, body).await;
    state.segment_requests.count(response.status());
    response
}

async fn segment_inner(state: &Arc<ServerState>, headers: &HeaderMap, body: Bytes) -> Response {
    if let Some(verifier) = &state.segment_verifier {
        let header = headers
            .get(SEGMENT_SIGNATURE_HEADER)
            .map(|value| value.as_bytes());
        if let Err(error) = verifier.verify(header, &body) {
            let message = error_chain(&error);
            state.record_failure(Route::Segment, 401, message.clone());
            return answer(StatusCode::UNAUTHORIZED, message);
        }
    }
    let Decoded {
        events,
        undecodable,
    } = match decode_body(&body) {
        Ok(decoded) => decoded,
        Err(error) => {
            let message = error.to_string();
            state.record_failure(Route::Segment, 400, message.clone());
            return answer(StatusCode::BAD_REQUEST, message);
        }
    };
    if events.is_empty() {
        // Every item of the batch is unreadable.
        let message = join_errors(&undecodable);
        state.record_failure(Route::Segment, 400, message.clone());
        return answer(StatusCode::BAD_REQUEST, message);
    }
    let count = events.len();
    let (indices, messages): (Vec<usize>, Vec<Message>) = events.into_iter().unzip();
    // Spawned, so a request that outlives its deadline still finishes in the background
    // (its messageIds stay claimed until then and Segment's retry is answered accordingly).
    let flows = state.flows.clone();
    let churn = state.churn.clone();
    let work = tokio::spawn(async move {
        let results = if let [message] = messages.as_slice() {
            vec![flows.process(message).await]
        } else {
            flows.process_batch(messages.clone()).await
        };
        if let Some(churn) = churn {
            churn.observe(&messages, &results).await;
        }
        results
    });
    let results = match tokio::time::timeout(state.deadlines.segment, work).await {
        Ok(Ok(results)) => {
            for (flow, result) in &results {
                state.flow_counters.count(*flow, result);
            }
            results
        }
        Ok(Err(join_error)) => {
            let message = format!("the delivery task failed: {join_error}");
            state.record_failure(Route::Segment, 503, message.clone());
            return answer(StatusCode::SERVICE_UNAVAILABLE, message);
        }
        Err(_elapsed) => {
            let message = format!(
                "delivery of {count} event(s) did not finish within {} ms",
                state.deadlines.segment.as_millis()
            );
            state.record_failure(Route::Segment, 503, message.clone());
            return answer(StatusCode::SERVICE_UNAVAILABLE, message);
        }
    };
    segment_answer(state, &indices, &results, &undecodable)
}

fn join_errors(errors: &[SegmentBodyError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// 503 when any event must be retried (Segment resends the whole request; the events already
/// delivered are then skipped as duplicates); else 400 when any event can never be handled
/// (undecodable, or refused by the mapping), naming each by its index in the body; else 200.
fn segment_answer(
    state: &ServerState,
    indices: &[usize],
    results: &[(FlowName, FlowResult)],
    undecodable: &[SegmentBodyError],
) -> Response {
    let failures = |retryable: bool| -> Vec<String> {
        indices
            .iter()
            .zip(results)
            .filter_map(|(index, (flow, result))| match result {
                FlowResult::Failed {
                    retryable: is_retryable,
                    message,
                } if *is_retryable == retryable => Some(format!(
                    "event at index {index} was not handled by the {flow} flow: {}",
                    redact_quoted(message)
                )),
                _ => None,
            })
            .collect()
    };
    let retry = failures(true);
    if !retry.is_empty() {
        let message = retry.join("; ");
        state.record_failure(Route::Segment, 503, message.clone());
        return answer(StatusCode::SERVICE_UNAVAILABLE, message);
    }
    let mut permanent: Vec<String> = undecodable.iter().map(ToString::to_string).collect();
    permanent.extend(failures(false));
    if !permanent.is_empty() {
        let handled = results
            .iter()
            .filter(|(_, result)| !matches!(result, FlowResult::Failed { .. }))
            .count();
        let message = format!(
            "{}; the other {handled} event(s) were handled",
            permanent.join("; ")
        );
        state.record_failure(Route::Segment, 400, message.clone());
        return answer(StatusCode::BAD_REQUEST, message);
    }
    answer(
        StatusCode::OK,
        format!("{} event(s) handled", results.len()),
    )
}

async fn customerio(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = customerio_inner(&state, &headers, body).await;
    state.customerio_requests.count(response.status());
    response
}

async fn customerio_inner(state: &Arc<ServerState>, headers: &HeaderMap, body: Bytes) -> Response {
    let Some(verifier) = &state.customerio_verifier else {
        return answer(
            StatusCode::NOT_FOUND,
            "reporting webhooks are not configured",
        );
    };
    let header = |name: &str| headers.get(name).map(|value| value.as_bytes());
    if let Err(error) = verifier.verify(
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        SystemTime::now(),
    ) {
        let message = error_chain(&error);
        state.record_failure(Route::CustomerIo, 401, message.clone());
        return answer(StatusCode::UNAUTHORIZED, message);
    }
    let event = match ReportingEvent::from_slice(&body) {
        Ok(event) => event,
        Err(error) => {
            // Authentic but unusable: acknowledge, or Customer.io holds back every later event.
            let message = error_chain(&error);
            state.record_failure(Route::CustomerIo, 200, message.clone());
            return answer(StatusCode::OK, message);
        }
    };
    let engagement = state.engagement.clone();
    let backfill = state.backfill.clone();
    let work = tokio::spawn(async move {
        let engagement = async {
            match &engagement {
                Some(flow) => flow.process(&event).await.map_or_else(
                    |error| (error.ack().is_retry_later(), Some(error_chain(&error))),
                    |_outcome| (false, None),
                ),
                None => (false, None),
            }
        };
        let backfill = async {
            match &backfill {
                Some(flow) => flow.on_event(&event).await.map_or_else(
                    |error| (error.ack().is_retry_later(), Some(error_chain(&error))),
                    |_outcome| (false, None),
                ),
                None => (false, None),
            }
        };
        let (engagement, backfill) = futures::join!(engagement, backfill);
        [engagement, backfill]
    });
    let results = match tokio::time::timeout(state.deadlines.customerio, work).await {
        Ok(Ok(results)) => results,
        Ok(Err(join_error)) => {
            let message = format!("the delivery task failed: {join_error}");
            state.record_failure(Route::CustomerIo, 503, message.clone());
            return answer(StatusCode::SERVICE_UNAVAILABLE, message);
        }
        Err(_elapsed) => {
            let message = format!(
                "delivery did not finish within {} ms",
                state.deadlines.customerio.as_millis()
            );
            state.record_failure(Route::CustomerIo, 503, message.clone());
            return answer(StatusCode::SERVICE_UNAVAILABLE, message);
        }
    };
    let errors: Vec<&str> = results
        .iter()
        .filter_map(|(_, error)| error.as_deref())
        .collect();
    // Only 200 or 503 from here: the request was authentic, and 429/500 would pause the
    // webhook for an hour.
    let retry = results.iter().any(|(retry_later, _)| *retry_later);
    let status = if retry {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    if errors.is_empty() {
        answer(status, "event handled")
    } else {
        let message = errors.join("; ");
        state.record_failure(Route::CustomerIo, status.as_u16(), message.clone());
        answer(status, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_batched_bodies_decode_and_errors_name_the_index() {
        let single = br#" {"type":"track","event":"A","userId":"u1","messageId":"m1"}"#;
        assert_eq!(decode_body(single).map(|d| d.events.len()).ok(), Some(1));
        let batch = br#"[{"type":"track","event":"A","userId":"u1","messageId":"m1"},
            {"type":"identify","userId":"u2","messageId":"m2"}]"#;
        assert_eq!(decode_body(batch).map(|d| d.events.len()).ok(), Some(2));
        let bad = br#"[{"type":"track","event":"A","userId":"u1","messageId":"m1"},
            {"type":"track","event":5,"userId":"secret-person"}]"#;
        // In a batch, the bad item is set aside and the good one kept.
        let decoded = decode_body(bad).unwrap();
        assert_eq!(
            decoded.events.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [0]
        );
        let error = join_errors(&decoded.undecodable);
        assert!(error.starts_with("event at index 1 is not"), "{error}");
        assert!(!error.contains("secret-person"), "{error}");
        // The library's decode errors name the JSON path; some also quote the offending value,
        // which the server blanks out.
        for leaky in [
            r#"{"type":"ada@example.com","userId":"u"}"#,
            r#"{"type":"track","event":"x","userId":"u","timestamp":"ada@example.com"}"#,
            r#"{"type":"track","event":"x","userId":7,"context":"ada@example.com"}"#,
        ] {
            let error = decode_body(leaky.as_bytes())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.starts_with("event at index 0"), "{error}");
            assert!(!error.contains("ada@"), "{error}");
        }
        let error = decode_body(br#"{"type":"ada@example.com"}"#)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "event at index 0 is not a Segment message: `type`: unknown message type \
                 (15 characters, not shown)"
            )
        );
        assert!(matches!(
            decode_body(b"[]"),
            Err(SegmentBodyError::EmptyBatch)
        ));
        assert!(matches!(
            decode_body(b"[{\"type\":"),
            Err(SegmentBodyError::NotAnArray(_))
        ));
    }
}
