//! `cio-sync serve`: the webhook server over the library's endpoints.
//!
//! | route | what |
//! |---|---|
//! | `POST /segment` | a Segment Webhooks destination request → every Segment → Customer.io flow ([`SegmentEndpoint`]; answers 200 / 400 / 401 / 503 by the library's rule); requires `SEGMENT_WEBHOOK_TOKEN` when it is set |
//! | `POST /customerio` | a Customer.io reporting webhook → the engagement back-sync and the backfill ([`CustomerIoEndpoint`]; 200, 401 or a fast 503, never 429 or 500), when `CIO_WEBHOOK_SIGNING_KEY` is set |
//! | `GET /metrics` | Prometheus text from the `metrics` facade (`metrics-exporter-prometheus`), when a recorder is installed |
//! | `GET /healthz` | `ok` while the process serves (alive) |
//! | `GET /readyz` | 200 when ready, else 503 naming why: Redis unreachable, a dispatcher paused or with a full queue, shutting down ([`SyncEngine::readiness`]) |
//! | `GET /` | a JSON status page: counts per route, per endpoint (shed requests included) and per dispatcher, and the dead letters pending (`dead_letters: {store, pending}`); no personal data |
//!
//! The webhook routes are bounded by the library's [`cio_segment_sync::axum`] gate: `[server]
//! concurrency_limit` requests at once per route (default 256, held until their work ends),
//! `requests_per_second` (default: none) and `body_limit_bytes`; over a limit a request gets a
//! fast 503 (413 for the body), never a queue.
//!
//! The server needs `CIO_SITE_ID` and `CIO_API_KEY` (or `--dry-run`, which sends every
//! Customer.io request to a local recording server). Dead letters (permanent refusals only) go
//! to the place [`crate::dead_letters`] describes: a file, the Redis stream with `REDIS_URL`,
//! or the data directory. With `[churn]` in the configuration it
//! runs the churn scan every `[server] churn_scan_interval_seconds`; with `REDIS_URL`, replicas
//! share a lease so that one of them scans per interval, and activity records expire after
//! `churn.activity_ttl_days` (by default the churn period plus the interval plus a day).
//!
//! On SIGTERM or Ctrl-C it drains: new webhook requests are answered 503 `shutting_down` at
//! once and `/readyz` 503; the requests in flight get their answer or, when the grace period
//! (`--shutdown-grace`, `[server] shutdown_grace_seconds`, default 25 s) ends, a 503; then it
//! stops listening and shuts the engine down within what is left of the grace (what the
//! dispatchers could not send by then goes back to its callers, its claims released, so the
//! sources redeliver it).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use cio_segment_sync::axum::{Endpoints, routes};
use cio_segment_sync::builder::{BuildError, SyncBuilder, SyncEngine};
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::webhook::SignatureVerifier;
use cio_segment_sync::dead_letter::{DeadLetterLog, DeadLetterSink, MemoryDeadLetters};
use cio_segment_sync::http::{
    CustomerIoEndpoint, Drain, EndpointConfigError, RequestRate, SegmentEndpoint,
};
use cio_segment_sync::redis::RedisConfig;
use cio_segment_sync::store::Stores;
use customerio_client::{AppClient, SiteId, TrackApiKey, TrackClient};
use segment_model::client::BaseUrl;
use segment_model::client::profile::{AccessToken, ProfileClient};
use segment_model::client::tracking::TrackingClient;
use segment_model::{SharedSecret, WebhookVerifier};
use serde_json::json;

use crate::dead_letters::{self, OpenError, Place};
use crate::env::{Env, EnvError, Problem};
use cio_segment_sync::testing::RecordingServer;

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
    /// The shutdown grace period (wins over `[server] shutdown_grace_seconds`).
    pub shutdown_grace: Option<Duration>,
}

impl fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeOptions")
            .field("dry_run", &self.dry_run)
            .field("dead_letter", &self.dead_letter)
            .field("data_dir", &self.data_dir)
            .field("metrics", &self.metrics.is_some())
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

/// How long the listener may take to close its connections after the drain: every webhook
/// request is answered by then, so this only bounds slow clients of the other routes.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A built server: the router to serve and the engine behind it.
pub struct Server {
    router: Router,
    engine: Arc<SyncEngine>,
    dry_run: Option<RecordingServer>,
    drain: Drain,
    grace: Duration,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("engine", &self.engine)
            .field("dry_run", &self.dry_run.is_some())
            .field("drain", &self.drain)
            .field("grace", &self.grace)
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
            let sink = RecordingServer::start().await.map_err(ServeError::DryRun)?;
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
                Stores::redis_for(&redis, &config)
                    .await
                    .map_err(ServeError::Redis)?
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
        if let Some(token) = &env.segment_webhook_token {
            segment = segment.token(token.clone());
        }
        let segment = Arc::new(segment.build()?);
        let mut endpoints = Endpoints::new()
            .with_segment(segment.clone())
            .with_body_limit(server_config.body_limit_bytes)
            .with_concurrency_limit(server_config.concurrency_limit)
            .with_health(engine.readiness());
        if let Some(rate) = server_config.requests_per_second {
            endpoints = endpoints.with_rate_limit(RequestRate::per_second(rate));
        }
        let drain = endpoints.drain();
        let grace = options
            .shutdown_grace
            .unwrap_or_else(|| server_config.shutdown_grace());
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
        let router = routes(endpoints).route(
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
            dry_run,
            drain,
            grace,
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
    pub fn dry_run(&self) -> Option<&RecordingServer> {
        self.dry_run.as_ref()
    }

    /// The webhook routes' drain ([`run`](Self::run) starts it when `shutdown` resolves).
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// The shutdown grace period in force.
    pub fn shutdown_grace(&self) -> Duration {
        self.grace
    }

    /// Serves on `listener` until `shutdown` resolves; then drains (new webhook requests 503,
    /// those in flight answered, or 503 when the grace period ends), stops listening and shuts
    /// the engine down (the dispatchers flush what they hold). Runs the churn scan on its
    /// interval when `[churn]` is configured.
    ///
    /// # Errors
    ///
    /// The listener failed.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The library's scanner: one replica per interval scans (the lease is in the stores).
        let (stop_scan, scan_stopped) = tokio::sync::oneshot::channel::<()>();
        let scan = self.engine.churn_scanner.clone().map(|scanner| {
            tokio::spawn(async move {
                scanner
                    .run(async {
                        let _ = scan_stopped.await;
                    })
                    .await;
            })
        });
        tracing::info!(address = %listener.local_addr()?, "Serving.");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut serving = tokio::spawn(
            axum::serve(listener, self.router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .into_future(),
        );
        let joined = |result: Result<std::io::Result<()>, tokio::task::JoinError>| {
            result.unwrap_or_else(|error| Err(std::io::Error::other(error)))
        };
        let mut signalled = None;
        let served = tokio::select! {
            result = &mut serving => joined(result),
            () = shutdown => {
                signalled = Some(tokio::time::Instant::now());
                let report = self.drain.run(self.grace).await;
                tracing::info!(
                    in_flight = report.in_flight_at_start,
                    cut_short = report.cut_short,
                    "Drained the webhook routes; closing the listener."
                );
                let _ = stop.send(());
                match tokio::time::timeout(CLOSE_TIMEOUT, &mut serving).await {
                    Ok(result) => joined(result),
                    Err(_elapsed) => {
                        tracing::warn!(
                            "Connections were still open after the drain; closing them."
                        );
                        serving.abort();
                        Ok(())
                    }
                }
            }
        };
        // Stop the scanner and wait for it to hand its lease over.
        let _ = stop_scan.send(());
        if let Some(scan) = scan {
            let _ = scan.await;
        }
        // The engine gets what is left of the grace: what it cannot send by then goes back to
        // its callers (claims released) instead of holding the process through an outage.
        let left = signalled.map_or(self.grace, |at| self.grace.saturating_sub(at.elapsed()));
        tracing::info!(
            left_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
            "Shutting down: flushing the dispatchers."
        );
        self.engine.shutdown_within(left).await;
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
               "service_unavailable": s.service_unavailable, "deadlines": s.deadlines,
               "overloaded": s.overloaded, "rate_limited": s.rate_limited,
               "shutting_down": s.shutting_down})
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
        "churn_scan": engine.churn_scanner.as_ref().map(|scanner| {
            let s = scanner.stats();
            json!({"scans": s.scans, "skipped": s.skipped, "errors": s.errors,
                   "leases_lost": s.leases_lost, "enrolled": s.enrolled, "failed": s.failed})
        }),
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
