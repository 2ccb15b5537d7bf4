//! The webhook endpoints as routes a host mounts in its own axum [`Router`] (feature `axum`).
//!
//! [`routes`] returns a `Router<S>` for any host state `S`, so it can be
//! [`merge`](Router::merge)d or [`nest`](Router::nest)ed into a router that has routes and
//! state of its own:
//!
//! | route | when | what |
//! |---|---|---|
//! | `POST /segment` | [`Endpoints::with_segment`] was given | [`SegmentEndpoint::handle`] |
//! | `POST /customerio` | [`Endpoints::with_customerio`] was given | [`CustomerIoEndpoint::handle`] |
//! | `GET /healthz` | [`Endpoints::with_health`] was given | 200 `ok` while the process serves (alive) |
//! | `GET /readyz` | [`Endpoints::with_health`] was given | 200 or 503 with the JSON [`ReadinessReport`] |
//! | `GET /metrics` | [`Endpoints::with_metrics`] was given | the text the host's closure renders |
//!
//! Every webhook answer is the endpoint's JSON [`AnswerBody`] (see
//! [`crate::http`] for the answer tables).
//!
//! # Bounded
//!
//! In front of each webhook route, before its body is read, a [`Gate`] refuses a request with
//! a fast 503 (never a queue, never 429 or 500, which pause Customer.io's webhooks for an
//! hour):
//!
//! | check | default | answer's `kind` | `reason` label |
//! |---|---|---|---|
//! | the [`Drain`] started ([`Endpoints::drain`]) | — | `shutting_down` | `shutting_down` |
//! | over [`Endpoints::with_rate_limit`] | off | `rate_limited` | `rate_limited` |
//! | at [`Endpoints::with_concurrency_limit`] requests whose work has not ended | [`DEFAULT_CONCURRENCY_LIMIT`] (256) per route | `overloaded` | `overloaded` |
//! | body over [`Endpoints::with_body_limit`] | [`DEFAULT_BODY_LIMIT`] (8 MiB) | `too_large` (413, naming the limit) | `too_large` |
//! | body not received within the endpoint's deadline (a client trickling it in) | — | `unreadable` | — |
//! | still in flight when the drain's grace period ends | — | `shutting_down` | `grace_ended` |
//!
//! A request keeps its place under the concurrency limit until its work ends, also when the
//! work outlives the endpoint's deadline and goes on in the background, so a flood or an
//! outage pins at most that many request tasks and bodies per route. Each route has its own
//! budget: an outage that stalls one direction does not shed the other. Every refusal is
//! counted in the endpoint's [`EndpointStats`] (`overloaded`, `rate_limited`, `shutting_down`,
//! `payload_too_large`) and, with the `metrics` feature, as
//! `cio_segment_sync_http_rejected_total{route, reason}`.
//!
//! The request-rate limit is off by default: the concurrency limit already bounds memory and
//! tasks, and any fixed rate would shed legitimate bursts (a campaign sent to a large audience
//! makes Customer.io post its events as fast as it sends; Segment posts as fast as events
//! arrive), and a 503 makes Customer.io hold back every later event behind it. Set one to cap
//! what a single process takes when it shares a host with other services.
//!
//! # Graceful shutdown
//!
//! [`Endpoints::drain`] is the routes' [`Drain`]: on shutdown the host calls
//! [`Drain::run`] with its grace period (new webhook requests 503 `shutting_down` at once,
//! those in flight get their answer or, when the grace ends, a 503), then stops its listener
//! and shuts the engine down. `GET /readyz` answers 503 from the moment the drain starts.
//!
//! The library installs no metrics recorder and renders no exposition format of its own:
//! `GET /metrics` serves whatever the host's closure returns (e.g. a
//! `metrics-exporter-prometheus` handle's `render()`).
//!
//! ```
//! use std::sync::Arc;
//! use axum::Router;
//! use axum::routing::get;
//! use cio_segment_sync::axum::{Endpoints, routes};
//! use cio_segment_sync::http::{Readiness, SegmentEndpoint};
//! use cio_segment_sync::outcome::Outcome;
//! use cio_segment_sync::pipeline::{Pipeline, PipelineError};
//! use cio_segment_sync::segment_model::Message;
//!
//! #[derive(Debug)]
//! struct DeliverAll;
//! #[async_trait::async_trait]
//! impl Pipeline for DeliverAll {
//!     async fn process(&self, _: &Message) -> Result<Outcome, PipelineError> {
//!         Ok(Outcome::Delivered)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let segment = SegmentEndpoint::builder(Arc::new(DeliverAll)).build()?;
//! let endpoints = Endpoints::new()
//!     .with_segment(Arc::new(segment))
//!     .with_health(Readiness::new())
//!     .with_metrics(Arc::new(|| "# the host's exporter renders this\n".to_owned()));
//! let drain = endpoints.drain(); // the host runs `drain.run(grace)` on shutdown
//! let app: Router = Router::new()
//!     .route("/hello", get(|| async { "hello" }))
//!     .nest("/webhooks", routes(endpoints));
//! // axum::serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?, app).await?;
//! # drop((app, drain));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use ::axum::Router;
use ::axum::body::{Body, Bytes};
use ::axum::extract::rejection::BytesRejection;
use ::axum::extract::{DefaultBodyLimit, FromRequest, Request};
use ::axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::{get, post};

use crate::http::{
    AnswerBody, CustomerIoEndpoint, Drain, EndpointResponse, EndpointStats, Gate, ProblemKind,
    Readiness, ReadinessReport, RequestRate, SegmentEndpoint, WorkPermit,
};

pub use crate::http::DEFAULT_CONCURRENCY_LIMIT;

/// The default largest request body: 8 MiB. Segment documents batches of up to 4000 events
/// but no size in bytes; Customer.io sends one event a request.
pub const DEFAULT_BODY_LIMIT: NonZeroUsize = match NonZeroUsize::new(8 * 1024 * 1024) {
    Some(limit) => limit,
    None => NonZeroUsize::MIN,
};

/// The content type of `GET /metrics`: the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the text `GET /metrics` answers, e.g. a Prometheus exporter handle's `render()`.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// What [`routes`] serves: the endpoints configured, their limits, the drain, the health
/// checks and the metrics renderer.
#[derive(Clone)]
pub struct Endpoints {
    segment: Option<Arc<SegmentEndpoint>>,
    customerio: Option<Arc<CustomerIoEndpoint>>,
    body_limit: NonZeroUsize,
    concurrency_limit: NonZeroUsize,
    rate_limit: Option<RequestRate>,
    drain: Drain,
    health: Option<Readiness>,
    metrics: Option<RenderMetrics>,
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoints")
            .field("segment", &self.segment)
            .field("customerio", &self.customerio)
            .field("body_limit", &self.body_limit)
            .field("concurrency_limit", &self.concurrency_limit)
            .field("rate_limit", &self.rate_limit)
            .field("drain", &self.drain)
            .field("health", &self.health)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl Default for Endpoints {
    fn default() -> Self {
        Self::new()
    }
}

impl Endpoints {
    /// No route yet, the [`DEFAULT_BODY_LIMIT`], the [`DEFAULT_CONCURRENCY_LIMIT`], no rate
    /// limit, and a [`Drain`] of its own.
    pub fn new() -> Self {
        Self {
            segment: None,
            customerio: None,
            body_limit: DEFAULT_BODY_LIMIT,
            concurrency_limit: DEFAULT_CONCURRENCY_LIMIT,
            rate_limit: None,
            drain: Drain::new(),
            health: None,
            metrics: None,
        }
    }

    /// Serves `POST /segment` with `endpoint`.
    #[must_use]
    pub fn with_segment(mut self, endpoint: Arc<SegmentEndpoint>) -> Self {
        self.segment = Some(endpoint);
        self
    }

    /// Serves `POST /customerio` with `endpoint`.
    #[must_use]
    pub fn with_customerio(mut self, endpoint: Arc<CustomerIoEndpoint>) -> Self {
        self.customerio = Some(endpoint);
        self
    }

    /// The largest request body accepted, in bytes (default [`DEFAULT_BODY_LIMIT`]).
    #[must_use]
    pub fn with_body_limit(mut self, bytes: NonZeroUsize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// At most `limit` requests at once per webhook route whose work has not ended (default
    /// [`DEFAULT_CONCURRENCY_LIMIT`]); more are answered 503 `overloaded` at once.
    #[must_use]
    pub fn with_concurrency_limit(mut self, limit: NonZeroUsize) -> Self {
        self.concurrency_limit = limit;
        self
    }

    /// At most `rate` requests per webhook route (default: no rate limit; see the
    /// [module docs](self) for why); more are answered 503 `rate_limited` at once.
    #[must_use]
    pub fn with_rate_limit(mut self, rate: RequestRate) -> Self {
        self.rate_limit = Some(rate);
        self
    }

    /// Uses `drain` (e.g. one the host shares with routes of its own) instead of the one
    /// [`new`](Self::new) made.
    #[must_use]
    pub fn with_drain(mut self, drain: Drain) -> Self {
        self.drain = drain;
        self
    }

    /// Serves `GET /healthz` (200 `ok`) and `GET /readyz` (the checks of `readiness`, after a
    /// first one of the routes' [`Drain`]), e.g.
    /// [`SyncEngine::readiness`](crate::builder::SyncEngine::readiness).
    #[must_use]
    pub fn with_health(mut self, readiness: Readiness) -> Self {
        self.health = Some(readiness);
        self
    }

    /// Serves `GET /metrics` with the text `render` returns (content type
    /// [`METRICS_CONTENT_TYPE`]).
    #[must_use]
    pub fn with_metrics(mut self, render: RenderMetrics) -> Self {
        self.metrics = Some(render);
        self
    }

    /// The largest request body accepted, in bytes.
    pub fn body_limit(&self) -> NonZeroUsize {
        self.body_limit
    }

    /// The concurrency limit of each webhook route.
    pub fn concurrency_limit(&self) -> NonZeroUsize {
        self.concurrency_limit
    }

    /// The routes' drain: the host runs [`Drain::run`] on it when it shuts down.
    pub fn drain(&self) -> Drain {
        self.drain.clone()
    }
}

/// What the webhook routes need of an endpoint.
trait Webhook: Send + Sync + 'static {
    fn stats(&self) -> &EndpointStats;
    fn deadline(&self) -> Duration;
    fn handle_holding(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        work: WorkPermit,
    ) -> impl Future<Output = EndpointResponse> + Send;
}

impl Webhook for SegmentEndpoint {
    fn stats(&self) -> &EndpointStats {
        SegmentEndpoint::stats(self)
    }
    fn deadline(&self) -> Duration {
        SegmentEndpoint::deadline(self)
    }
    fn handle_holding(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        work: WorkPermit,
    ) -> impl Future<Output = EndpointResponse> + Send {
        SegmentEndpoint::handle_holding(self, headers, body, work)
    }
}

impl Webhook for CustomerIoEndpoint {
    fn stats(&self) -> &EndpointStats {
        CustomerIoEndpoint::stats(self)
    }
    fn deadline(&self) -> Duration {
        CustomerIoEndpoint::deadline(self)
    }
    fn handle_holding(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        work: WorkPermit,
    ) -> impl Future<Output = EndpointResponse> + Send {
        CustomerIoEndpoint::handle_holding(self, headers, body, work)
    }
}

/// The routes of `endpoints` (see the [module docs](self)), for any host state `S`: merge or
/// nest them into the host's own router.
pub fn routes<S>(endpoints: Endpoints) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let Endpoints {
        segment,
        customerio,
        body_limit: limit,
        concurrency_limit,
        rate_limit,
        drain,
        health,
        metrics,
    } = endpoints;
    let gate = |route: &'static str| {
        let gate = Gate::new(route, concurrency_limit, drain.clone());
        Arc::new(match rate_limit {
            Some(rate) => gate.with_rate(rate),
            None => gate,
        })
    };
    let mut router = Router::new();
    if let Some(endpoint) = segment {
        let gate = gate("segment");
        router = router.route(
            "/segment",
            post(move |headers: HeaderMap, request: Request| async move {
                webhook(&*endpoint, &gate, limit, headers, request).await
            }),
        );
    }
    if let Some(endpoint) = customerio {
        let gate = gate("customerio");
        router = router.route(
            "/customerio",
            post(move |headers: HeaderMap, request: Request| async move {
                webhook(&*endpoint, &gate, limit, headers, request).await
            }),
        );
    }
    // Limits the webhook routes only: the layer wraps the routes added so far, so a host's
    // own routes merged later keep their own limits.
    router = router.layer(DefaultBodyLimit::max(limit.get()));
    if let Some(readiness) = health {
        let readiness = Arc::new(readiness.with_drain(drain));
        router = router.route("/healthz", get(|| async { "ok" })).route(
            "/readyz",
            get(move || async move { ReadyAnswer(readiness.report().await) }),
        );
    }
    if let Some(render) = metrics {
        router = router.route(
            "/metrics",
            get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(METRICS_CONTENT_TYPE),
                    )],
                    render(),
                )
            }),
        );
    }
    router
}

/// One webhook request: admitted by the gate before its body is read, then answered by the
/// endpoint within the drain's grace period.
async fn webhook<E: Webhook>(
    endpoint: &E,
    gate: &Gate,
    limit: NonZeroUsize,
    headers: HeaderMap,
    request: Request,
) -> EndpointResponse {
    let admitted = match gate.admit() {
        Ok(admitted) => admitted,
        Err(rejection) => {
            let response = rejection.response();
            endpoint.stats().record(&response);
            return response;
        }
    };
    let answer = async {
        // A body trickling in would hold its place forever: it must arrive within the
        // endpoint's deadline.
        let deadline = endpoint.deadline();
        match tokio::time::timeout(deadline, Bytes::from_request(request, &())).await {
            Ok(Ok(body)) => {
                endpoint
                    .handle_holding(&headers, body, admitted.work_permit())
                    .await
            }
            Ok(Err(rejection)) => rejected(&rejection, limit, gate.route(), endpoint.stats()),
            Err(_elapsed) => {
                let response = EndpointResponse::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    AnswerBody::problem(
                        ProblemKind::Unreadable,
                        format!(
                            "the request body did not arrive within {} ms",
                            deadline.as_millis()
                        ),
                    ),
                );
                endpoint.stats().record(&response);
                response
            }
        }
    };
    match admitted.within_grace(answer).await {
        Some(response) => response,
        None => {
            let response = Drain::cut_short_response();
            endpoint.stats().record(&response);
            response
        }
    }
}

/// The answer to a body that could not be read: 413 when it is over the limit, else 503 (the
/// connection failed; a retry may pass, and Customer.io must never see a 4xx for it).
fn rejected(
    rejection: &BytesRejection,
    limit: NonZeroUsize,
    route: &'static str,
    stats: &EndpointStats,
) -> EndpointResponse {
    let response = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        crate::http::count_rejection(route, ProblemKind::TooLarge.as_str());
        EndpointResponse::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            AnswerBody::problem(
                ProblemKind::TooLarge,
                format!("the request body is larger than the limit of {limit} bytes"),
            ),
        )
    } else {
        EndpointResponse::new(
            StatusCode::SERVICE_UNAVAILABLE,
            AnswerBody::problem(
                ProblemKind::Unreadable,
                "the request body could not be read",
            ),
        )
    };
    stats.record(&response);
    response
}

impl IntoResponse for EndpointResponse {
    /// The status, `content-type: application/json` and the [`AnswerBody`] as JSON.
    fn into_response(self) -> Response {
        json_response(self.status, self.to_json_bytes())
    }
}

/// `GET /readyz`'s answer.
struct ReadyAnswer(ReadinessReport);

impl IntoResponse for ReadyAnswer {
    fn into_response(self) -> Response {
        json_response(self.0.status(), self.0.to_json_bytes())
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(EndpointResponse::CONTENT_TYPE),
    );
    response
}
