//! [`Gate`]: load shedding in front of a webhook route, before its body is read.

use std::fmt;
use std::future::Future;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use ::http::StatusCode;
use governor::{DefaultDirectRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::EndpointConfigError;
use super::answer::{AnswerBody, EndpointResponse, ProblemKind};
use super::drain::{Drain, InFlight};

/// The default concurrency limit of each webhook route: 256 requests whose work is not
/// finished.
///
/// A request holds its place from admission until its work ends, also when that work outlives
/// the endpoint's deadline and goes on in the background, so the figure bounds the tasks and
/// memory a flood or an outage can pin: at most 256 requests and their bodies (8 MiB each at
/// the default body limit) per route. While the vendor is up a request takes milliseconds, so
/// 256 at once serves thousands a second; while it is down the work stays stuck, and every
/// request beyond the 256 is answered a fast 503 that both sources retry (Segment for about
/// 4 hours, Customer.io for 7 days) instead of piling up in memory.
pub const DEFAULT_CONCURRENCY_LIMIT: NonZeroUsize = match NonZeroUsize::new(256) {
    Some(limit) => limit,
    None => NonZeroUsize::MIN,
};

/// A request-rate bound: at most `requests` per `per`, with bursts of up to `requests`
/// (a token bucket refilled one token every `per / requests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRate {
    requests: NonZeroU32,
    per: Duration,
}

impl RequestRate {
    /// `requests` a second, with bursts of up to `requests`.
    pub fn per_second(requests: NonZeroU32) -> Self {
        Self {
            requests,
            per: Duration::from_secs(1),
        }
    }

    /// `requests` per `per`, with bursts of up to `requests`.
    ///
    /// # Errors
    ///
    /// [`EndpointConfigError::ZeroRatePeriod`] when `per` is too short to hold `requests`
    /// (under a nanosecond a request).
    pub fn new(requests: NonZeroU32, per: Duration) -> Result<Self, EndpointConfigError> {
        if (per / requests.get()).is_zero() {
            return Err(EndpointConfigError::ZeroRatePeriod);
        }
        Ok(Self { requests, per })
    }

    /// Requests per period.
    pub fn requests(&self) -> NonZeroU32 {
        self.requests
    }

    /// The period.
    pub fn per(&self) -> Duration {
        self.per
    }

    fn quota(&self) -> Quota {
        let interval = self.per / self.requests.get();
        // `new` refused a zero interval; `per_second` has one of at least 1/u32::MAX s.
        Quota::with_period(interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(self.requests)
    }
}

impl fmt::Display for RequestRate {
    /// `1000 requests per 1 s`, `2 requests per 3600 s`, `5 requests per 250 ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.per.subsec_nanos() == 0 {
            write!(f, "{} requests per {} s", self.requests, self.per.as_secs())
        } else {
            write!(
                f,
                "{} requests per {} ms",
                self.requests,
                self.per.as_millis()
            )
        }
    }
}

/// Why a [`Gate`] refused a request. Each is answered 503 with a JSON body naming it, never
/// 429 or 500 (Customer.io pauses a webhook for an hour after those).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The drain started ([`Drain::start`]).
    ShuttingDown,
    /// The route is over its request-rate limit.
    RateLimited {
        /// The limit.
        rate: RequestRate,
    },
    /// The route is at its concurrency limit.
    Overloaded {
        /// The limit.
        limit: NonZeroUsize,
    },
}

impl Rejection {
    /// The problem kind the answer names.
    pub fn kind(&self) -> ProblemKind {
        match self {
            Rejection::ShuttingDown => ProblemKind::ShuttingDown,
            Rejection::RateLimited { .. } => ProblemKind::RateLimited,
            Rejection::Overloaded { .. } => ProblemKind::Overloaded,
        }
    }

    /// The answer: 503 with a JSON body naming the reason and the limit.
    pub fn response(&self) -> EndpointResponse {
        match self {
            Rejection::ShuttingDown => Drain::refused_response(),
            Rejection::RateLimited { rate } => EndpointResponse::new(
                StatusCode::SERVICE_UNAVAILABLE,
                AnswerBody::problem(
                    self.kind(),
                    format!("the route is over its limit of {rate}; send the request again"),
                ),
            ),
            Rejection::Overloaded { limit } => EndpointResponse::new(
                StatusCode::SERVICE_UNAVAILABLE,
                AnswerBody::problem(
                    self.kind(),
                    format!(
                        "the route is at its limit of {limit} requests at once; send the \
                         request again"
                    ),
                ),
            ),
        }
    }
}

/// Holds a place under a route's concurrency limit. Cheap to clone: the place is freed when the
/// last clone drops. The endpoints' `handle_holding` move one into the task running the work,
/// so work that outlives its deadline keeps its place until it ends.
#[derive(Clone, Default)]
pub struct WorkPermit {
    permit: Option<Arc<OwnedSemaphorePermit>>,
}

impl WorkPermit {
    /// A permit that holds no place (for a request no [`Gate`] admitted).
    pub fn none() -> Self {
        Self::default()
    }
}

impl fmt::Debug for WorkPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkPermit")
            .field("holds_a_place", &self.permit.is_some())
            .finish()
    }
}

/// A request a [`Gate`] admitted: it is counted in flight by the gate's [`Drain`] and holds a
/// place under the concurrency limit until it (and its [`work_permit`](Self::work_permit)s) are
/// dropped.
#[derive(Debug)]
pub struct Admitted {
    route: &'static str,
    work: WorkPermit,
    in_flight: InFlight,
}

impl Admitted {
    /// A permit to move into the request's work ([`SegmentEndpoint::handle_holding`](super::SegmentEndpoint::handle_holding),
    /// [`CustomerIoEndpoint::handle_holding`](super::CustomerIoEndpoint::handle_holding)).
    pub fn work_permit(&self) -> WorkPermit {
        self.work.clone()
    }

    /// `work`'s output, or `None` when the drain's grace period ends first: `work` is dropped
    /// then (what it spawned goes on), the request is counted as cut short
    /// (`reason="grace_ended"`), and the host answers [`Drain::cut_short_response`].
    pub async fn within_grace<F: Future>(&self, work: F) -> Option<F::Output> {
        let output = self.in_flight.until_grace_ends(work).await;
        if output.is_none() {
            count_rejection(self.route, "grace_ended");
        }
        output
    }
}

/// Load shedding in front of one webhook route, checked before the request's body is read:
/// the [`Drain`] (refused once it started), an optional [`RequestRate`], and a concurrency
/// limit. A request over any of them is refused at once (no queue), answered 503 with a JSON
/// body naming why ([`Rejection::response`]), and counted in the `metrics` facade (feature
/// `metrics`) as `cio_segment_sync_http_rejected_total{route, reason}`.
///
/// The [`axum`](crate::axum) routes put one in front of each webhook route; a host on another
/// framework calls [`admit`](Self::admit) before reading the body, answers the rejection, and
/// otherwise hands [`Admitted::work_permit`] to the endpoint, within
/// [`Admitted::within_grace`].
pub struct Gate {
    route: &'static str,
    permits: Arc<Semaphore>,
    limit: NonZeroUsize,
    rate: Option<(RequestRate, DefaultDirectRateLimiter)>,
    drain: Drain,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("route", &self.route)
            .field("limit", &self.limit)
            .field("in_use", &self.in_use())
            .field("rate", &self.rate.as_ref().map(|(rate, _)| rate))
            .field("drain", &self.drain)
            .finish()
    }
}

impl Gate {
    /// A gate for `route` (its name in metrics: `segment`, `customerio`) admitting at most
    /// `limit` requests at once (at most tokio's semaphore maximum, `usize::MAX >> 3`),
    /// refusing every request once `drain` started, with no rate limit.
    pub fn new(route: &'static str, limit: NonZeroUsize, drain: Drain) -> Self {
        let limit = limit.min(NonZeroUsize::new(Semaphore::MAX_PERMITS).unwrap_or(limit));
        Self {
            route,
            permits: Arc::new(Semaphore::new(limit.get())),
            limit,
            rate: None,
            drain,
        }
    }

    /// Also refuses requests over `rate`.
    #[must_use]
    pub fn with_rate(mut self, rate: RequestRate) -> Self {
        self.rate = Some((rate, DefaultDirectRateLimiter::direct(rate.quota())));
        self
    }

    /// The route's name.
    pub fn route(&self) -> &'static str {
        self.route
    }

    /// The concurrency limit.
    pub fn limit(&self) -> NonZeroUsize {
        self.limit
    }

    /// Places in use: requests admitted whose work has not ended.
    pub fn in_use(&self) -> usize {
        self.limit
            .get()
            .saturating_sub(self.permits.available_permits())
    }

    /// Admits a request, or says why not (and counts the refusal). Never waits.
    ///
    /// # Errors
    ///
    /// The [`Rejection`]; answer it with [`Rejection::response`].
    pub fn admit(&self) -> Result<Admitted, Rejection> {
        let result = self.try_admit();
        if let Err(rejection) = &result {
            let reason = rejection.kind().as_str();
            tracing::debug!(
                route = self.route,
                reason,
                "Shed a webhook request with a 503."
            );
            count_rejection(self.route, reason);
        }
        result
    }

    fn try_admit(&self) -> Result<Admitted, Rejection> {
        let in_flight = self.drain.enter().ok_or(Rejection::ShuttingDown)?;
        if let Some((rate, limiter)) = &self.rate
            && limiter.check().is_err()
        {
            return Err(Rejection::RateLimited { rate: *rate });
        }
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                return Err(Rejection::Overloaded { limit: self.limit });
            }
        };
        Ok(Admitted {
            route: self.route,
            work: WorkPermit {
                permit: Some(Arc::new(permit)),
            },
            in_flight,
        })
    }
}

/// Counts a refused request in the `metrics` facade (feature `metrics`):
/// `cio_segment_sync_http_rejected_total{route, reason}`.
pub(crate) fn count_rejection(route: &'static str, reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "cio_segment_sync_http_rejected_total",
        "route" => route,
        "reason" => reason
    )
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (route, reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    #[test]
    fn the_request_over_the_limit_is_shed_and_a_freed_place_is_reused() {
        let gate = Gate::new("segment", nz(2), Drain::new());
        let first = gate.admit().unwrap();
        let second = gate.admit().unwrap();
        assert_eq!(gate.in_use(), 2);
        let rejection = gate.admit().unwrap_err();
        assert_eq!(rejection, Rejection::Overloaded { limit: nz(2) });
        let response = rejection.response();
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.body.problems[0].message,
            "the route is at its limit of 2 requests at once; send the request again"
        );
        // The work holds the place after the request itself is gone.
        let work = first.work_permit();
        drop(first);
        assert!(gate.admit().is_err());
        drop(work);
        let third = gate.admit().unwrap();
        drop((second, third));
        assert_eq!(gate.in_use(), 0);
    }

    #[test]
    fn a_rate_over_its_burst_is_shed() {
        let rate = RequestRate::new(
            std::num::NonZeroU32::new(2).unwrap(),
            Duration::from_secs(3600),
        )
        .unwrap();
        let gate = Gate::new("customerio", nz(10), Drain::new()).with_rate(rate);
        let (a, b) = (gate.admit().unwrap(), gate.admit().unwrap());
        let rejection = gate.admit().unwrap_err();
        assert_eq!(rejection, Rejection::RateLimited { rate });
        assert_eq!(
            rejection.response().body.problems[0].message,
            "the route is over its limit of 2 requests per 3600 s; send the request again"
        );
        drop((a, b));
        assert!(gate.admit().is_err(), "the rate is not the concurrency");
    }

    #[test]
    fn nothing_is_admitted_once_the_drain_started() {
        let drain = Drain::new();
        let gate = Gate::new("segment", nz(10), drain.clone());
        drain.start();
        assert_eq!(gate.admit().unwrap_err(), Rejection::ShuttingDown);
        assert_eq!(gate.in_use(), 0);
        assert_eq!(drain.in_flight(), 0);
    }

    #[test]
    fn rates_read_in_seconds_or_milliseconds() {
        let n = |n| NonZeroU32::new(n).unwrap();
        assert_eq!(
            RequestRate::per_second(n(1000)).to_string(),
            "1000 requests per 1 s"
        );
        assert_eq!(
            RequestRate::new(n(5), Duration::from_millis(250))
                .unwrap()
                .to_string(),
            "5 requests per 250 ms"
        );
    }

    #[test]
    fn a_period_too_short_for_its_requests_is_refused() {
        let error = RequestRate::new(NonZeroU32::MAX, Duration::from_nanos(5)).unwrap_err();
        assert_eq!(error, EndpointConfigError::ZeroRatePeriod);
    }
}
