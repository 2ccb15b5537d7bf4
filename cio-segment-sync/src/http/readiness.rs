//! Readiness: whether this process should be sent webhooks now (`GET /readyz`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::http::StatusCode;
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::drain::Drain;
use crate::builder::SyncEngine;
use crate::dispatch::{DispatcherHandle, Sink};
use crate::store::Stores;

/// Why a [`ReadinessCheck`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotReadyReason {
    /// A backend (Redis) does not answer.
    Unreachable,
    /// A dispatcher paused every send (the server throttled it).
    Paused,
    /// A dispatcher's queue is full: a new item would wait.
    QueueFull,
    /// A dispatcher stopped accepting items (it was shut down).
    Closed,
    /// The server is shutting down (its [`Drain`] started).
    ShuttingDown,
    /// The check did not answer within the readiness timeout.
    TimedOut,
    /// A host's own reason.
    Other,
}

impl NotReadyReason {
    /// The reason as it is written in the JSON answer: `unreachable`, `paused`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            NotReadyReason::Unreachable => "unreachable",
            NotReadyReason::Paused => "paused",
            NotReadyReason::QueueFull => "queue_full",
            NotReadyReason::Closed => "closed",
            NotReadyReason::ShuttingDown => "shutting_down",
            NotReadyReason::TimedOut => "timed_out",
            NotReadyReason::Other => "other",
        }
    }
}

impl fmt::Display for NotReadyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed [`ReadinessCheck`]: the reason and what it found (never personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
#[non_exhaustive]
pub struct NotReady {
    /// Why.
    pub reason: NotReadyReason,
    /// What was found, e.g. `the queue holds 10000 of 10000 items`.
    pub message: String,
}

impl NotReady {
    /// A failure for `reason`.
    pub fn new(reason: NotReadyReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// One thing this process's readiness depends on. Implemented by [`Stores`] (Redis
/// reachable), [`DispatcherHandle`] (not paused, queue not full, not shut down) and by hosts for
/// their own dependencies. Object safe: [`Readiness`] holds `Arc<dyn ReadinessCheck>`.
#[async_trait]
pub trait ReadinessCheck: Send + Sync + fmt::Debug {
    /// The name in the report, e.g. `stores` or `dispatcher:customerio.v2.batch`.
    fn name(&self) -> String;

    /// `Ok` when ready. Should be cheap: it runs on every `GET /readyz`.
    async fn check(&self) -> Result<(), NotReady>;
}

#[async_trait]
impl ReadinessCheck for Stores {
    fn name(&self) -> String {
        "stores".to_owned()
    }

    /// [`Stores::ping`]: a `PING` to Redis (always ready in memory).
    async fn check(&self) -> Result<(), NotReady> {
        self.ping()
            .await
            .map_err(|error| NotReady::new(NotReadyReason::Unreachable, super::describe(&error)))
    }
}

#[async_trait]
impl<S: Sink> ReadinessCheck for DispatcherHandle<S> {
    fn name(&self) -> String {
        format!("dispatcher:{}", self.sink_name())
    }

    /// Not ready when shut down, paused by a throttled answer, or when its queue is full.
    async fn check(&self) -> Result<(), NotReady> {
        if self.is_closed() {
            return Err(NotReady::new(
                NotReadyReason::Closed,
                "the dispatcher was shut down",
            ));
        }
        if let Some(left) = self.paused_for() {
            return Err(NotReady::new(
                NotReadyReason::Paused,
                format!(
                    "every send is paused for {} ms more (the server throttled a request)",
                    left.as_millis()
                ),
            ));
        }
        let (len, capacity) = (self.queue_len(), self.queue_capacity());
        if len >= capacity {
            return Err(NotReady::new(
                NotReadyReason::QueueFull,
                format!("the queue holds {len} of {capacity} items"),
            ));
        }
        Ok(())
    }
}

/// The drain, as a check: not ready once it started.
#[derive(Debug)]
struct DrainCheck(Drain);

#[async_trait]
impl ReadinessCheck for DrainCheck {
    fn name(&self) -> String {
        "server".to_owned()
    }

    async fn check(&self) -> Result<(), NotReady> {
        if self.0.is_draining() {
            return Err(NotReady::new(
                NotReadyReason::ShuttingDown,
                "the server is shutting down",
            ));
        }
        Ok(())
    }
}

/// One check's result in a [`ReadinessReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// The check's [`name`](ReadinessCheck::name).
    pub name: String,
    /// Whether it passed.
    pub ready: bool,
    /// Why not, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<NotReadyReason>,
    /// What it found, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The answer of `GET /readyz`: ready when every check passed.
///
/// ```json
/// {"ready":false,"checks":[{"name":"server","ready":true},
///  {"name":"stores","ready":false,"reason":"unreachable","message":"redis: backend unavailable: …"}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReadinessReport {
    /// Whether every check passed.
    pub ready: bool,
    /// Each check, in the order they were added.
    pub checks: Vec<CheckReport>,
}

impl ReadinessReport {
    /// 200 when ready, else 503.
    pub fn status(&self) -> StatusCode {
        if self.ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }

    /// The report as JSON.
    pub fn to_json_bytes(&self) -> Bytes {
        // Strings, booleans and unit variants always serialise.
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_default()
    }
}

/// The checks `GET /readyz` runs: whether this process should be sent webhooks now. Every
/// check runs concurrently, each bounded by [`check_timeout`](Self::with_check_timeout); the
/// answer is 200 when all pass and 503 naming each failure otherwise. Served with `GET
/// /healthz` (alive: 200 `ok` while the process serves) by
/// [`Endpoints::with_health`](crate::axum::Endpoints::with_health), which adds the routes'
/// [`Drain`] as the first check (`server`: not ready once shutting down).
///
/// ```
/// use std::sync::Arc;
/// use cio_segment_sync::http::Readiness;
/// use cio_segment_sync::store::Stores;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let readiness = Readiness::new().with_check(Arc::new(Stores::memory()));
/// let report = readiness.report().await;
/// assert!(report.ready);
/// assert_eq!(report.checks[0].name, "stores");
/// # }
/// ```
#[derive(Clone)]
pub struct Readiness {
    checks: Vec<Arc<dyn ReadinessCheck>>,
    timeout: Duration,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field(
                "checks",
                &self.checks.iter().map(|c| c.name()).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// The default bound of each check: 500 ms, so `/readyz` answers inside the 1-second
    /// default timeout of Kubernetes probes even when Redis hangs.
    pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

    /// No check yet (ready), [`DEFAULT_CHECK_TIMEOUT`](Self::DEFAULT_CHECK_TIMEOUT).
    pub fn new() -> Self {
        Self {
            checks: Vec::new(),
            timeout: Self::DEFAULT_CHECK_TIMEOUT,
        }
    }

    /// Adds `check`.
    #[must_use]
    pub fn with_check(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Bounds each check: one that does not answer within `timeout` fails
    /// ([`NotReadyReason::TimedOut`]).
    #[must_use]
    pub fn with_check_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Makes `drain` the first check (`server`): not ready once it started.
    /// [`Endpoints::with_health`](crate::axum::Endpoints::with_health) does this with the
    /// routes' drain.
    #[must_use]
    pub fn with_drain(mut self, drain: Drain) -> Self {
        self.checks.insert(0, Arc::new(DrainCheck(drain)));
        self
    }

    /// Runs every check (concurrently, each bounded) and reports.
    pub async fn report(&self) -> ReadinessReport {
        let timeout = self.timeout;
        let results = futures::future::join_all(self.checks.iter().map(|check| async move {
            let result = match tokio::time::timeout(timeout, check.check()).await {
                Ok(result) => result,
                Err(_elapsed) => Err(NotReady::new(
                    NotReadyReason::TimedOut,
                    format!("no answer within {} ms", timeout.as_millis()),
                )),
            };
            (check.name(), result)
        }))
        .await;
        let checks: Vec<CheckReport> = results
            .into_iter()
            .map(|(name, result)| match result {
                Ok(()) => CheckReport {
                    name,
                    ready: true,
                    reason: None,
                    message: None,
                },
                Err(not_ready) => CheckReport {
                    name,
                    ready: false,
                    reason: Some(not_ready.reason),
                    message: Some(not_ready.message),
                },
            })
            .collect();
        let ready = checks.iter().all(|check| check.ready);
        if !ready {
            tracing::debug!(
                failed = checks.iter().filter(|check| !check.ready).count(),
                "Not ready."
            );
        }
        ReadinessReport { ready, checks }
    }
}

impl SyncEngine {
    /// The engine's readiness checks: its stores (Redis reachable) and each of its dispatchers
    /// (not paused, queue not full, not shut down). Give it to
    /// [`Endpoints::with_health`](crate::axum::Endpoints::with_health) for `GET /readyz`.
    pub fn readiness(&self) -> Readiness {
        let mut readiness = Readiness::new()
            .with_check(Arc::new(self.stores.clone()))
            .with_check(Arc::new(self.customerio.clone()));
        if let Some(segments) = &self.segments {
            readiness = readiness.with_check(Arc::new(segments.clone()));
        }
        if let Some(segment) = &self.segment {
            readiness = readiness.with_check(Arc::new(segment.clone()));
        }
        readiness
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Hangs;

    #[async_trait]
    impl ReadinessCheck for Hangs {
        fn name(&self) -> String {
            "hangs".to_owned()
        }
        async fn check(&self) -> Result<(), NotReady> {
            std::future::pending().await
        }
    }

    #[derive(Debug)]
    struct Fails;

    #[async_trait]
    impl ReadinessCheck for Fails {
        fn name(&self) -> String {
            "fails".to_owned()
        }
        async fn check(&self) -> Result<(), NotReady> {
            Err(NotReady::new(NotReadyReason::Other, "the host said no"))
        }
    }

    #[tokio::test]
    async fn no_check_is_ready() {
        let report = Readiness::new().report().await;
        assert_eq!((report.ready, report.status()), (true, StatusCode::OK));
        assert!(report.checks.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_check_times_out_and_every_failure_is_named() {
        let drain = Drain::new();
        let readiness = Readiness::new()
            .with_check(Arc::new(Stores::memory()))
            .with_check(Arc::new(Hangs))
            .with_check(Arc::new(Fails))
            .with_drain(drain.clone());
        drain.start();
        let report = readiness.report().await;
        assert_eq!(report.status(), StatusCode::SERVICE_UNAVAILABLE);
        let json: serde_json::Value = serde_json::from_slice(&report.to_json_bytes()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ready": false, "checks": [
                {"name": "server", "ready": false, "reason": "shutting_down",
                 "message": "the server is shutting down"},
                {"name": "stores", "ready": true},
                {"name": "hangs", "ready": false, "reason": "timed_out",
                 "message": "no answer within 500 ms"},
                {"name": "fails", "ready": false, "reason": "other", "message": "the host said no"},
            ]})
        );
        let back: ReadinessReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
