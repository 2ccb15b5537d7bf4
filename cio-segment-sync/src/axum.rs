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
//! | `GET /metrics` | [`Endpoints::with_metrics`] was given | the text the host's closure renders |
//!
//! Every webhook answer is the endpoint's JSON [`AnswerBody`] (see
//! [`crate::http`] for the answer tables). Request bodies are limited to
//! [`Endpoints::body_limit`] bytes (default [`DEFAULT_BODY_LIMIT`]); a larger one is answered
//! 413 with a JSON body naming the limit.
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
//! use cio_segment_sync::http::SegmentEndpoint;
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
//!     .with_metrics(Arc::new(|| "# the host's exporter renders this\n".to_owned()));
//! let app: Router = Router::new()
//!     .route("/hello", get(|| async { "hello" }))
//!     .nest("/webhooks", routes(endpoints));
//! // axum::serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?, app).await?;
//! # drop(app);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use ::axum::Router;
use ::axum::body::{Body, Bytes};
use ::axum::extract::DefaultBodyLimit;
use ::axum::extract::rejection::BytesRejection;
use ::axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::{get, post};

use crate::http::{
    AnswerBody, CustomerIoEndpoint, EndpointResponse, EndpointStats, ProblemKind, SegmentEndpoint,
};

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

/// What [`routes`] serves: the endpoints configured, the body limit, and the metrics renderer.
#[derive(Clone)]
pub struct Endpoints {
    segment: Option<Arc<SegmentEndpoint>>,
    customerio: Option<Arc<CustomerIoEndpoint>>,
    body_limit: NonZeroUsize,
    metrics: Option<RenderMetrics>,
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoints")
            .field("segment", &self.segment)
            .field("customerio", &self.customerio)
            .field("body_limit", &self.body_limit)
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
    /// No route yet, and the [`DEFAULT_BODY_LIMIT`].
    pub fn new() -> Self {
        Self {
            segment: None,
            customerio: None,
            body_limit: DEFAULT_BODY_LIMIT,
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
}

/// The routes of `endpoints` (see the [module docs](self)), for any host state `S`: merge or
/// nest them into the host's own router.
pub fn routes<S>(endpoints: Endpoints) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let limit = endpoints.body_limit;
    let mut router = Router::new();
    if let Some(endpoint) = endpoints.segment {
        router = router.route(
            "/segment",
            post(
                move |headers: HeaderMap, body: Result<Bytes, BytesRejection>| async move {
                    match body {
                        Ok(body) => endpoint.handle(&headers, body).await,
                        Err(rejection) => rejected(&rejection, limit, endpoint.stats()),
                    }
                },
            ),
        );
    }
    if let Some(endpoint) = endpoints.customerio {
        router = router.route(
            "/customerio",
            post(
                move |headers: HeaderMap, body: Result<Bytes, BytesRejection>| async move {
                    match body {
                        Ok(body) => endpoint.handle(&headers, body).await,
                        Err(rejection) => rejected(&rejection, limit, endpoint.stats()),
                    }
                },
            ),
        );
    }
    // Limits the webhook routes only: the layer wraps the routes added so far, so a host's
    // own routes merged later keep their own limits.
    router = router.layer(DefaultBodyLimit::max(limit.get()));
    if let Some(render) = endpoints.metrics {
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

/// The answer to a body that could not be read: 413 when it is over the limit, else 503 (the
/// connection failed; a retry may pass, and Customer.io must never see a 4xx for it).
fn rejected(
    rejection: &BytesRejection,
    limit: NonZeroUsize,
    stats: &EndpointStats,
) -> EndpointResponse {
    let response = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
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
        let mut response = Response::new(Body::from(self.to_json_bytes()));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(EndpointResponse::CONTENT_TYPE),
        );
        response
    }
}
