//! [`Drain`]: the graceful shutdown of the webhook routes.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::http::StatusCode;
use tokio::sync::watch;

use super::answer::{AnswerBody, EndpointResponse, ProblemKind};

/// Where a [`Drain`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DrainPhase {
    /// Requests are admitted.
    Serving,
    /// The drain started: new requests are answered 503 at once, requests in flight go on.
    Draining,
    /// The grace period ended: requests still in flight are answered 503 now.
    GraceEnded,
}

/// How a [`Drain::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainReport {
    /// Requests in flight when the drain started.
    pub in_flight_at_start: usize,
    /// Requests still in flight when the grace period ended, answered 503 then (0 when every
    /// request finished within the grace period).
    pub cut_short: usize,
}

/// The graceful shutdown of the webhook routes, shared by the routes and the host that stops
/// them. Cheap to clone; every clone is the same drain.
///
/// While [`Serving`](DrainPhase::Serving), the routes admit requests and count the ones in
/// flight (from admission to answer). [`start`](Self::start) turns new requests away with a fast
/// 503 (`shutting_down`) while those in flight go on; [`end_grace`](Self::end_grace) answers
/// the ones still in flight 503 at once (their work is not cancelled: it goes on in the
/// background, as after a deadline, until the host shuts its engine down).
/// [`run`](Self::run) does both around a grace period. A 503 is what both sources retry:
/// Segment for about 4 hours, Customer.io for 7 days, and neither pauses for it.
///
/// ```
/// use std::time::Duration;
/// use cio_segment_sync::http::{Drain, DrainPhase};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let drain = Drain::new();
/// // … serve routes built with this drain, until the host is told to stop; then:
/// let report = drain.run(Duration::from_secs(25)).await;
/// assert_eq!(drain.phase(), DrainPhase::GraceEnded);
/// assert_eq!(report.cut_short, 0);
/// // … now stop the listener and shut the engine down.
/// # }
/// ```
#[derive(Clone)]
pub struct Drain {
    inner: Arc<Inner>,
}

struct Inner {
    phase: watch::Sender<DrainPhase>,
    in_flight: watch::Sender<usize>,
}

impl fmt::Debug for Drain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("phase", &self.phase())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Default for Drain {
    fn default() -> Self {
        Self::new()
    }
}

impl Drain {
    /// A drain that is [`Serving`](DrainPhase::Serving), nothing in flight.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                phase: watch::Sender::new(DrainPhase::Serving),
                in_flight: watch::Sender::new(0),
            }),
        }
    }

    /// The phase now.
    pub fn phase(&self) -> DrainPhase {
        *self.inner.phase.borrow()
    }

    /// Whether the drain started (new requests are refused).
    pub fn is_draining(&self) -> bool {
        self.phase() != DrainPhase::Serving
    }

    /// Requests admitted and not answered yet.
    pub fn in_flight(&self) -> usize {
        *self.inner.in_flight.borrow()
    }

    /// Refuses new requests from now on (503, `shutting_down`); those in flight go on. Does
    /// nothing once started.
    pub fn start(&self) {
        self.inner.phase.send_if_modified(|phase| {
            if *phase == DrainPhase::Serving {
                *phase = DrainPhase::Draining;
                true
            } else {
                false
            }
        });
    }

    /// Answers the requests still in flight 503 now (and refuses new ones). Their work is not
    /// cancelled.
    pub fn end_grace(&self) {
        self.inner.phase.send_if_modified(|phase| {
            let changed = *phase != DrainPhase::GraceEnded;
            *phase = DrainPhase::GraceEnded;
            changed
        });
    }

    /// Resolves once no request is in flight.
    pub async fn idle(&self) {
        let mut in_flight = self.inner.in_flight.subscribe();
        // The sender lives in `self`: the channel cannot close while this waits.
        let _ = in_flight.wait_for(|n| *n == 0).await;
    }

    /// The whole drain: [`start`](Self::start), wait up to `grace` for the requests in flight
    /// to be answered, then [`end_grace`](Self::end_grace) and wait for the last answers (which
    /// are immediate 503s). The host then stops its listener and shuts the engine down.
    pub async fn run(&self, grace: Duration) -> DrainReport {
        self.start();
        let in_flight_at_start = self.in_flight();
        tracing::info!(
            in_flight = in_flight_at_start,
            grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            "Draining the webhook routes: new requests are answered 503."
        );
        let cut_short = match tokio::time::timeout(grace, self.idle()).await {
            Ok(()) => 0,
            Err(_elapsed) => {
                let left = self.in_flight();
                tracing::warn!(
                    in_flight = left,
                    "The shutdown grace period ended; answering the requests still in flight 503."
                );
                left
            }
        };
        self.end_grace();
        self.idle().await;
        DrainReport {
            in_flight_at_start,
            cut_short,
        }
    }

    /// Counts a request in flight, unless the drain started.
    pub(crate) fn enter(&self) -> Option<InFlight> {
        // Counted before the phase is read: a drain that starts after the count sees it and
        // waits for it; one that started before is seen here and the request is refused.
        self.inner.in_flight.send_modify(|n| *n += 1);
        let guard = InFlight {
            drain: self.clone(),
        };
        if self.is_draining() {
            None
        } else {
            Some(guard)
        }
    }

    /// Resolves when the grace period ends.
    pub(crate) fn grace_ended(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut phase = self.inner.phase.subscribe();
        async move {
            // The sender lives as long as any `Drain`; if every one is gone, no grace ends.
            if phase
                .wait_for(|phase| *phase == DrainPhase::GraceEnded)
                .await
                .is_err()
            {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// One request in flight; uncounted when dropped.
pub(crate) struct InFlight {
    drain: Drain,
}

impl InFlight {
    /// `work`'s output, or `None` when the grace period ends first (`work` is dropped then).
    pub(crate) async fn until_grace_ends<F: Future>(&self, work: F) -> Option<F::Output> {
        let grace_ended = self.drain.grace_ended();
        tokio::select! {
            biased;
            output = work => Some(output),
            () = grace_ended => None,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.drain
            .inner
            .in_flight
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InFlight").finish_non_exhaustive()
    }
}

impl Drain {
    /// The answer to a request refused because the drain started: 503, `shutting_down`.
    pub fn refused_response() -> EndpointResponse {
        EndpointResponse::new(
            StatusCode::SERVICE_UNAVAILABLE,
            AnswerBody::problem(
                ProblemKind::ShuttingDown,
                "the server is shutting down and takes no new request; send it again",
            ),
        )
    }

    /// The answer to a request in flight when the grace period ended: 503, `shutting_down`.
    pub fn cut_short_response() -> EndpointResponse {
        EndpointResponse::new(
            StatusCode::SERVICE_UNAVAILABLE,
            AnswerBody::problem(
                ProblemKind::ShuttingDown,
                "the server is shutting down and the request was not finished within the shutdown \
             grace period; send it again",
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_admitted_before_the_drain_is_waited_for() {
        let drain = Drain::new();
        let request = drain.enter().expect("serving");
        assert_eq!(drain.in_flight(), 1);
        drain.start();
        assert!(drain.enter().is_none(), "no new request once draining");
        assert_eq!(drain.in_flight(), 1, "the refused one is not counted");
        let waiting = tokio::spawn({
            let drain = drain.clone();
            async move { drain.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(request);
        waiting.await.unwrap();
        assert_eq!(drain.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_end_cuts_short_what_is_still_in_flight() {
        let drain = Drain::new();
        let request = drain.enter().expect("serving");
        let work = tokio::spawn({
            async move {
                let answer = request.until_grace_ends(std::future::pending::<()>()).await;
                drop(request);
                answer
            }
        });
        let report = drain.run(Duration::from_secs(25)).await;
        assert_eq!(
            report,
            DrainReport {
                in_flight_at_start: 1,
                cut_short: 1
            }
        );
        assert_eq!(work.await.unwrap(), None);
        assert_eq!(drain.phase(), DrainPhase::GraceEnded);
    }

    #[tokio::test(start_paused = true)]
    async fn work_finished_within_the_grace_keeps_its_answer() {
        let drain = Drain::new();
        let request = drain.enter().expect("serving");
        let (release, released) = tokio::sync::oneshot::channel::<u8>();
        let work = tokio::spawn(async move {
            let answer = request
                .until_grace_ends(async move { released.await.unwrap() })
                .await;
            drop(request);
            answer
        });
        let draining = tokio::spawn({
            let drain = drain.clone();
            async move { drain.run(Duration::from_secs(25)).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(drain.phase(), DrainPhase::Draining);
        release.send(7).unwrap();
        assert_eq!(work.await.unwrap(), Some(7));
        assert_eq!(draining.await.unwrap().cut_short, 0);
    }

    #[test]
    fn answers_say_the_server_is_shutting_down() {
        for response in [Drain::refused_response(), Drain::cut_short_response()] {
            assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.body.problems[0].kind, ProblemKind::ShuttingDown);
            assert!(response.body.problems[0].message.contains("shutting down"));
        }
    }
}
