//! Counters of one endpoint's answers, for a host's status page or its metrics exporter.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::answer::{EndpointResponse, ProblemKind};

/// One endpoint's answers so far: requests by status, items by how they ended. Lock-free;
/// read it with [`snapshot`](Self::snapshot).
#[derive(Debug, Default)]
pub struct EndpointStats {
    ok: AtomicU64,
    bad_request: AtomicU64,
    unauthorized: AtomicU64,
    payload_too_large: AtomicU64,
    service_unavailable: AtomicU64,
    other_status: AtomicU64,
    delivered: AtomicU64,
    skipped: AtomicU64,
    dead_lettered: AtomicU64,
    retry_later: AtomicU64,
    refused: AtomicU64,
    deadlines: AtomicU64,
    overloaded: AtomicU64,
    rate_limited: AtomicU64,
    shutting_down: AtomicU64,
}

/// A copy of an [`EndpointStats`]' counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EndpointStatsSnapshot {
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests answered 400.
    pub bad_request: u64,
    /// Requests answered 401.
    pub unauthorized: u64,
    /// Requests answered 413.
    pub payload_too_large: u64,
    /// Requests answered 503.
    pub service_unavailable: u64,
    /// Requests answered any other status.
    pub other_status: u64,
    /// Items delivered.
    pub delivered: u64,
    /// Items skipped.
    pub skipped: u64,
    /// Items dead-lettered.
    pub dead_lettered: u64,
    /// Items answered "retry later" (a deadline counts each item it left unfinished).
    pub retry_later: u64,
    /// Items refused for good and not kept.
    pub refused: u64,
    /// Requests whose work did not finish within the deadline.
    pub deadlines: u64,
    /// Requests shed (503) because the route was at its concurrency limit.
    pub overloaded: u64,
    /// Requests shed (503) because the route was over its request-rate limit.
    pub rate_limited: u64,
    /// Requests answered 503 because the server is shutting down (refused once the drain
    /// started, or cut short when its grace period ended).
    pub shutting_down: u64,
}

impl EndpointStatsSnapshot {
    /// All requests answered.
    pub fn requests(&self) -> u64 {
        self.ok
            + self.bad_request
            + self.unauthorized
            + self.payload_too_large
            + self.service_unavailable
            + self.other_status
    }
}

impl EndpointStats {
    /// Counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one answer: its status, its item counts, and whether it hit the deadline, was
    /// shed (concurrency or rate limit) or met the shutdown. The endpoints call it for every
    /// answer they return; a host that answers a request itself instead of calling the
    /// endpoint (as the `axum` routes do for a body over the limit, a shed request or the
    /// drain) calls it too.
    pub fn record(&self, response: &EndpointResponse) {
        let status = match response.status.as_u16() {
            200..=299 => &self.ok,
            400 => &self.bad_request,
            401 => &self.unauthorized,
            413 => &self.payload_too_large,
            503 => &self.service_unavailable,
            _ => &self.other_status,
        };
        status.fetch_add(1, Ordering::Relaxed);
        let body = &response.body;
        let add = |counter: &AtomicU64, n: usize| {
            if n > 0 {
                counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
            }
        };
        add(&self.delivered, body.delivered);
        add(&self.skipped, body.skipped);
        add(&self.dead_lettered, body.dead_lettered);
        add(&self.retry_later, body.retry_later);
        add(&self.refused, body.refused);
        for (kind, counter) in [
            (ProblemKind::Deadline, &self.deadlines),
            (ProblemKind::Overloaded, &self.overloaded),
            (ProblemKind::RateLimited, &self.rate_limited),
            (ProblemKind::ShuttingDown, &self.shutting_down),
        ] {
            if body.problems.iter().any(|problem| problem.kind == kind) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> EndpointStatsSnapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        EndpointStatsSnapshot {
            ok: get(&self.ok),
            bad_request: get(&self.bad_request),
            unauthorized: get(&self.unauthorized),
            payload_too_large: get(&self.payload_too_large),
            service_unavailable: get(&self.service_unavailable),
            other_status: get(&self.other_status),
            delivered: get(&self.delivered),
            skipped: get(&self.skipped),
            dead_lettered: get(&self.dead_lettered),
            retry_later: get(&self.retry_later),
            refused: get(&self.refused),
            deadlines: get(&self.deadlines),
            overloaded: get(&self.overloaded),
            rate_limited: get(&self.rate_limited),
            shutting_down: get(&self.shutting_down),
        }
    }
}

#[cfg(test)]
mod tests {
    use ::http::StatusCode;

    use super::*;
    use crate::http::{AnswerBody, Problem};

    #[test]
    fn counts_statuses_items_and_deadlines() {
        let stats = EndpointStats::new();
        let mut body = AnswerBody::new();
        body.delivered = 2;
        body.refused = 1;
        stats.record(&EndpointResponse::new(StatusCode::BAD_REQUEST, body));
        let mut late = AnswerBody::new();
        late.retry_later(Problem::new(None, ProblemKind::Deadline, "late"));
        stats.record(&EndpointResponse::new(
            StatusCode::SERVICE_UNAVAILABLE,
            late,
        ));
        stats.record(&EndpointResponse::new(StatusCode::OK, AnswerBody::new()));
        for kind in [
            ProblemKind::Overloaded,
            ProblemKind::RateLimited,
            ProblemKind::ShuttingDown,
            ProblemKind::ShuttingDown,
        ] {
            stats.record(&EndpointResponse::new(
                StatusCode::SERVICE_UNAVAILABLE,
                AnswerBody::problem(kind, "shed"),
            ));
        }
        let snapshot = stats.snapshot();
        assert_eq!(
            snapshot,
            EndpointStatsSnapshot {
                ok: 1,
                bad_request: 1,
                service_unavailable: 5,
                delivered: 2,
                refused: 1,
                retry_later: 1,
                deadlines: 1,
                overloaded: 1,
                rate_limited: 1,
                shutting_down: 2,
                ..EndpointStatsSnapshot::default()
            }
        );
        assert_eq!(snapshot.requests(), 7);
    }
}
