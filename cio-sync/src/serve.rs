//! `cio-sync serve`: the webhook server over the library's endpoints.
//!
//! | route | what |
//! |---|---|
//! | `POST /segment` | a Segment Webhooks destination request → every Segment → Customer.io flow ([`SegmentEndpoint`]; answers 200 / 400 / 401 / 503 by the library's rule) |
//! | `POST /customerio` | a Customer.io reporting webhook → the engagement back-sync and the backfill ([`CustomerIoEndpoint`]; 200, 401 or a fast 503, never 429 or 500), when `CIO_WEBHOOK_SIGNING_KEY` is set |
//! | `GET /metrics` | Prometheus text from the `metrics` facade (`metrics-exporter-prometheus`), when a recorder is installed |
//! | `GET /healthz` | `ok` while the process serves |
//! | `GET /` | a JSON status page: counts per route, per endpoint and per dispatcher, and the dead letters pending (`dead_letters: {store, pending}`); no personal data |
//!
//! The server needs `CIO_SITE_ID` and `CIO_API_KEY` (or `--dry-run`, which sends every
//! Customer.io request to a local recording server). Dead letters (permanent refusals only) go
//! to the place [`crate::dead_letters`] describes: a file, the Redis stream with `REDIS_URL`,
//! or the data directory. With `[churn]` in the configuration it
//! runs the churn scan every `[server] churn_scan_interval_seconds`. On SIGTERM or Ctrl-C it
//! stops accepting connections, finishes the requests in flight and flushes the dispatchers.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use cio_segment_sync::axum::{Endpoints, routes};
use cio_segment_sync::builder::{BuildError, SyncBuilder, SyncEngine};
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::webhook::SignatureVerifier;
use cio_segment_sync::dead_letter::{DeadLetterLog, DeadLetterSink, MemoryDeadLetters};
use cio_segment_sync::http::{CustomerIoEndpoint, EndpointConfigError, SegmentEndpoint};
use cio_segment_sync::redis::RedisConfig;
use cio_segment_sync::store::Stores;
use customerio_client::{AppClient, SiteId, TrackApiKey, TrackClient};
use segment_model::client::BaseUrl;
use segment_model::client::profile::{AccessToken, ProfileClient};
use segment_model::client::tracking::TrackingClient;
use segment_model::{SharedSecret, WebhookVerifier};
use serde_json::json;

use crate::dead_letters::{self, OpenError, Place};
use crate::dry_run::DrySink;
use crate::env::{Env, EnvError, Problem};

/// Renders the Prometheus text of the installed recorder.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// The server could not be built. Names the part; carries no secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The environment is incomplete or wrong (every problem listed).
    #[error(transparent)]
    Env(#[from] EnvError),
    /// A vendor client refused its settings.
    #[error("the {client} client cannot be built")]
    Client {
        /// Which client.
        client: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A flow cannot be built from its section.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// An endpoint setting cannot work.
    #[error(transparent)]
    Endpoint(#[from] EndpointConfigError),
    /// `REDIS_URL` is set but Redis cannot be reached.
    #[error("Redis cannot be reached")]
    Redis(#[source] cio_segment_sync::StoreError),
    /// The dead-letter store (file, directory or Redis stream) cannot be opened.
    #[error("the dead-letter store cannot be opened")]
    DeadLetterFile(#[source] OpenError),
    /// The dry-run recording server cannot start.
    #[error("the dry-run recording server cannot start")]
    DryRun(#[source] std::io::Error),
}

fn client_error<E: std::error::Error + Send + Sync + 'static>(
    client: &'static str,
) -> impl FnOnce(E) -> ServeError {
    move |error| ServeError::Client {
        client,
        source: Box::new(error),
    }
}

/// Options of [`Server::build`] that are not in the environment or the configuration.
#[derive(Default)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Send every Customer.io request to a local recording server.
    pub dry_run: bool,
    /// Append dead letters to this one file (wins over `[server] dead_letter_file`, the Redis
    /// stream and the data directory).
    pub dead_letter: Option<std::path::PathBuf>,
    /// The data directory for dead letters when neither a file nor Redis is configured (wins
    /// over `[server] data_dir`). Without either, dead letters are kept in memory:
    /// `cio-sync serve` always passes one.
    pub data_dir: Option<std::path::PathBuf>,
    /// The installed metrics recorder's renderer, for `GET /metrics`.
    pub metrics: Option<RenderMetrics>,
}

impl fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeOptions")
            .field("dry_run", &self.dry_run)
            .field("dead_letter", &self.dead_letter)
            .field("data_dir", &self.data_dir)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

/// A built server: the router to serve and the engine behind it.
pub struct Server {
    router: Router,
    engine: Arc<SyncEngine>,
    config: SyncConfig,
    dry_run: Option<DrySink>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("engine", &self.engine)
            .field("dry_run", &self.dry_run.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Builds every flow and endpoint from `env` and `config`, and spawns the dispatchers'
    /// workers on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ServeError`] naming what cannot be built; for the environment, every problem at once.
    pub async fn build(
        env: Env,
        config: SyncConfig,
        options: ServeOptions,
    ) -> Result<Self, ServeError> {
        let server_config = config.server();
        let client_config = env.client_config()?;
        let (track, dry_run) = if options.dry_run {
            let sink = DrySink::start().await.map_err(ServeError::DryRun)?;
            let client = TrackClient::new(
                SiteId::new("dry-run-site"),
                TrackApiKey::new("dry-run-key"),
                client_config
                    .clone()
                    .with_track_base_url(sink.base_url())
                    .map_err(client_error("Customer.io Track"))?,
            )
            .map_err(client_error("Customer.io Track"))?;
            (client, Some(sink))
        } else {
            let Some(credentials) = env.track.clone() else {
                return Err(EnvError(vec![Problem {
                    var: "CIO_SITE_ID",
                    problem: "and `CIO_API_KEY` must be set (or pass --dry-run)".to_owned(),
                }])
                .into());
            };
            let client = TrackClient::new(
                credentials.site_id,
                credentials.api_key,
                client_config.clone(),
            )
            .map_err(client_error("Customer.io Track"))?;
            (client, None)
        };
        let stores = match &env.redis_url {
            None => Stores::memory(),
            Some(url) => {
                let mut redis = RedisConfig::new(url.expose());
                if let Some(prefix) = &server_config.redis_prefix {
                    redis = redis.with_prefix(prefix.as_str());
                }
                Stores::redis(&redis).await.map_err(ServeError::Redis)?
            }
        };
        let dead_letter_file = options
            .dead_letter
            .clone()
            .or(server_config.dead_letter_file.clone());
        let data_dir = options.data_dir.clone().or(server_config.data_dir.clone());
        let dead_letters: (Arc<dyn DeadLetterLog>, &'static str) =
            match (dead_letter_file, &env.redis_url, data_dir) {
                (None, None, None) => (
                    Arc::new(MemoryDeadLetters::new(
                        cio_segment_sync::builder::DEFAULT_MEMORY_DEAD_LETTERS,
                    )),
                    "memory",
                ),
                (file, _, dir) => {
                    let place = Place::choose(file, false, &env, dir.unwrap_or_default());
                    let store = dead_letters::open(&place, &env, &server_config)
                        .await
                        .map_err(ServeError::DeadLetterFile)?;
                    (store, place.kind())
                }
            };
        let sink: Arc<dyn DeadLetterSink> = dead_letters.0.clone();
        let mut builder = SyncBuilder::new(track, config.clone())
            .stores(stores)
            .dead_letters(sink);
        if let Some(key) = env.app_api_key.clone() {
            builder = builder.app_client(
                AppClient::new(key, client_config).map_err(client_error("Customer.io App"))?,
            );
        }
        if let (Some(write_key), Some(signing_key)) =
            (env.segment_write_key.clone(), env.cio_signing_key.clone())
        {
            let mut tracking =
                TrackingClient::builder(segment_model::WriteKey::new(write_key.expose()));
            if let Some(url) = &env.segment_api_url {
                tracking = tracking.base_url(segment_url("SEGMENT_API_URL", url)?);
            }
            let tracking = tracking.build().map_err(client_error("Segment Tracking"))?;
            builder = builder.back_sync(tracking, signing_key);
        }
        if let (Some((token, space)), Some(_)) = (&env.segment_profile, &env.cio_signing_key) {
            let mut profiles =
                ProfileClient::builder(AccessToken::new(token.expose()), space.as_str());
            if let Some(url) = &env.segment_profile_url {
                profiles = profiles.base_url(segment_url("SEGMENT_PROFILE_URL", url)?);
            }
            let profiles = profiles.build().map_err(client_error("Segment Profile"))?;
            builder = builder.backfill(profiles);
        }
        let (engine, workers) = builder.build()?;
        for worker in workers {
            tokio::spawn(worker);
        }
        let engine = Arc::new(engine);

        let mut segment = SegmentEndpoint::builder(engine.router.clone())
            .deadline(server_config.segment_deadline());
        if let Some(secret) = &env.segment_webhook_secret {
            segment = segment.verifier(WebhookVerifier::new(SharedSecret::new(secret.expose())));
        }
        let segment = Arc::new(segment.build()?);
        let mut endpoints = Endpoints::new()
            .with_segment(segment.clone())
            .with_body_limit(server_config.body_limit_bytes);
        let mut customerio = None;
        if let Some(key) = &env.cio_signing_key
            && (engine.engagement.is_some() || engine.backfill.is_some())
        {
            let mut builder = CustomerIoEndpoint::builder(SignatureVerifier::new(key.clone()))
                .deadline(server_config.customerio_deadline())
                .dead_letters(engine.dead_letters.clone() as Arc<dyn DeadLetterSink>);
            if let Some(flow) = &engine.engagement {
                builder = builder.engagement(flow.clone());
            }
            if let Some(flow) = &engine.backfill {
                builder = builder.backfill(flow.clone());
            }
            let endpoint = Arc::new(builder.build()?);
            endpoints = endpoints.with_customerio(endpoint.clone());
            customerio = Some(endpoint);
        }
        if let Some(render) = options.metrics {
            endpoints = endpoints.with_metrics(render);
        }
        let status_engine = engine.clone();
        let router = routes(endpoints)
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/",
                get(move || {
                    let engine = status_engine.clone();
                    let segment = segment.clone();
                    let customerio = customerio.clone();
                    let (store, kind) = dead_letters.clone();
                    async move {
                        // A count that cannot be read shows as null; the page still answers.
                        let pending = store.pending_count().await.ok();
                        let dead_letters = json!({"store": kind, "pending": pending});
                        status(&engine, &segment, customerio.as_deref(), dead_letters)
                    }
                }),
            );
        Ok(Self {
            router,
            engine,
            config,
            dry_run,
        })
    }

    /// The routes, for a host that serves them itself.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The engine behind the routes.
    pub fn engine(&self) -> &Arc<SyncEngine> {
        &self.engine
    }

    /// The dry-run recording server, with `--dry-run`.
    pub fn dry_run(&self) -> Option<&DrySink> {
        self.dry_run.as_ref()
    }

    /// Serves on `listener` until `shutdown` resolves; then stops accepting, finishes the
    /// requests in flight and flushes the dispatchers. Runs the churn scan on its interval when
    /// `[churn]` is configured.
    ///
    /// # Errors
    ///
    /// The listener failed.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let scan = self.engine.churn.clone().map(|monitor| {
            let every = self.config.server().churn_scan_interval();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                    let mut cursor = None;
                    loop {
                        match monitor.scan(now, cursor.as_ref()).await {
                            Ok(report) => {
                                tracing::info!(
                                    enrolled = report.enrolled,
                                    "Finished a churn scan page."
                                );
                                match report.next {
                                    Some(next) => cursor = Some(next),
                                    None => break,
                                }
                            }
                            Err(error) => {
                                tracing::warn!(error = %error, "A churn scan failed; retrying at the next interval.");
                                break;
                            }
                        }
                    }
                }
            })
        });
        tracing::info!(address = %listener.local_addr()?, "Serving.");
        let served = axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        if let Some(scan) = scan {
            scan.abort();
        }
        tracing::info!("Shutting down: flushing the dispatchers.");
        self.engine.shutdown().await;
        served
    }
}

/// A Segment base-URL override the client accepts, or the variable named.
fn segment_url(var: &'static str, url: &url::Url) -> Result<BaseUrl, ServeError> {
    BaseUrl::parse(url.as_str()).map_err(|_| {
        ServeError::Env(EnvError(vec![Problem {
            var,
            problem: "is refused by the Segment client".to_owned(),
        }]))
    })
}

fn status(
    engine: &SyncEngine,
    segment: &SegmentEndpoint,
    customerio: Option<&CustomerIoEndpoint>,
    dead_letters: serde_json::Value,
) -> axum::response::Response {
    let router = engine.router.stats();
    let route = |r: cio_segment_sync::flows::router::RouteStats| {
        json!({"delivered": r.delivered, "skipped": r.skipped, "dead_lettered": r.dead_lettered,
               "retry_later": r.retry_later, "refused": r.refused})
    };
    let dispatcher = |s: cio_segment_sync::dispatch::Stats| {
        json!({"submitted": s.submitted, "delivered": s.delivered, "dead_lettered": s.dead_lettered,
               "retry_later": s.retry_later, "queue_depth": s.queue_depth, "in_flight": s.in_flight,
               "throttled": s.throttled})
    };
    let endpoint = |s: cio_segment_sync::http::EndpointStatsSnapshot| {
        json!({"requests": s.requests(), "ok": s.ok, "bad_request": s.bad_request,
               "unauthorized": s.unauthorized, "payload_too_large": s.payload_too_large,
               "service_unavailable": s.service_unavailable, "deadlines": s.deadlines})
    };
    let body = json!({
        "flows": engine.router.routes().iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "routes": {
            "triggers": route(router.triggers),
            "onboarding": route(router.onboarding),
            "audience": route(router.audience),
        },
        "endpoints": {
            "segment": endpoint(segment.stats().snapshot()),
            "customerio": customerio.map(|c| endpoint(c.stats().snapshot())),
        },
        "dispatchers": {
            "customerio": dispatcher(engine.customerio.stats()),
            "segments": engine.segments.as_ref().map(|d| dispatcher(d.stats())),
            "segment": engine.segment.as_ref().map(|d| dispatcher(d.stats())),
        },
        "dead_letters": dead_letters,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("Received a shutdown signal.");
}
