//! What an endpoint answers: a status and a JSON body of counts and problems.

use std::fmt;

use ::http::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;

/// What kind of problem a [`Problem`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The body, or one item of it, cannot be decoded.
    Undecodable,
    /// A flow refused the item for good ([`Ack::Refuse`](crate::outcome::Ack::Refuse)).
    Refused,
    /// The item is not finished and must be sent again
    /// ([`Ack::RetryLater`](crate::outcome::Ack::RetryLater)).
    RetryLater,
    /// The signature is missing, malformed, wrong or (Customer.io) outside its time window.
    Signature,
    /// The work did not finish within the endpoint's deadline; it goes on in the background.
    Deadline,
    /// The body is larger than the configured limit.
    TooLarge,
    /// The body could not be read from the connection.
    Unreadable,
    /// The task running the work failed (it panicked, or the runtime is shutting down).
    Internal,
    /// The route is at its concurrency limit; the request was shed before its body was read.
    Overloaded,
    /// The route is over its request-rate limit; the request was shed before its body was read.
    RateLimited,
    /// The server is shutting down: a new request is refused, or one in flight was not
    /// finished within the shutdown grace period.
    ShuttingDown,
    /// The webhook token is missing or wrong.
    Token,
}

impl ProblemKind {
    /// The kind as it is written in the JSON answer: `undecodable`, `refused`, `retry_later`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Undecodable => "undecodable",
            ProblemKind::Refused => "refused",
            ProblemKind::RetryLater => "retry_later",
            ProblemKind::Signature => "signature",
            ProblemKind::Deadline => "deadline",
            ProblemKind::TooLarge => "too_large",
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::Internal => "internal",
            ProblemKind::Overloaded => "overloaded",
            ProblemKind::RateLimited => "rate_limited",
            ProblemKind::ShuttingDown => "shutting_down",
            ProblemKind::Token => "token",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that went wrong with a request, or with one item of it.
///
/// The message is an error's `Display` with its sources: it names fields, paths, positions and
/// steps, never a value of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Problem {
    /// The item's index in the body (from 0; a lone event is 0), or `None` when the problem
    /// concerns the request as a whole (and for Customer.io, which sends one event a request).
    pub index: Option<usize>,
    /// What kind of problem.
    pub kind: ProblemKind,
    /// What was wrong.
    pub message: String,
}

impl Problem {
    /// A problem of `kind`, about the item at `index` (or the whole request).
    pub fn new(index: Option<usize>, kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            index,
            kind,
            message: message.into(),
        }
    }
}

/// The JSON body of every answer: how the request's items ended, and what went wrong.
///
/// For Segment the counts are per item of the body; for Customer.io (one event a request) they
/// are per flow that ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AnswerBody {
    /// Items delivered ([`Outcome::Delivered`]).
    pub delivered: usize,
    /// Items with nothing to write ([`Outcome::Skipped`]), duplicates included.
    pub skipped: usize,
    /// Items refused for good and kept in a dead-letter sink ([`Outcome::DeadLettered`], or an
    /// authentic Customer.io event this endpoint kept because it cannot be used).
    pub dead_lettered: usize,
    /// Items not finished, that the source must send again.
    pub retry_later: usize,
    /// Items refused for good and not kept: undecodable, or refused by a flow.
    pub refused: usize,
    /// What went wrong, in body order (problems about the whole request first).
    pub problems: Vec<Problem>,
}

impl AnswerBody {
    /// An empty answer: no count, no problem.
    pub fn new() -> Self {
        Self::default()
    }

    /// The answer naming one problem with the request as a whole.
    pub fn problem(kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem::new(None, kind, message)],
            ..Self::default()
        }
    }

    /// The body as JSON.
    pub fn to_json_bytes(&self) -> Bytes {
        // Counts, strings and unit variants always serialise.
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_default()
    }

    /// Counts an outcome.
    pub(crate) fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Delivered => self.delivered += 1,
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::DeadLettered(_) => self.dead_lettered += 1,
        }
    }

    /// Records an item not finished.
    pub(crate) fn retry_later(&mut self, problem: Problem) {
        self.retry_later += 1;
        self.problems.push(problem);
    }

    /// Records an item refused for good and not kept.
    pub(crate) fn refused(&mut self, problem: Problem) {
        self.refused += 1;
        self.problems.push(problem);
    }

    /// Puts the problems in body order; the request's own problems first.
    pub(crate) fn sort_problems(&mut self) {
        // Stable: problems of one index keep the order they were found in.
        self.problems.sort_by_key(|problem| problem.index);
    }
}

/// An endpoint's answer: the status to send and the JSON body
/// ([`to_json_bytes`](Self::to_json_bytes), content type [`CONTENT_TYPE`](Self::CONTENT_TYPE)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointResponse {
    /// 200, 400, 401, 413 or 503 (the Customer.io endpoint: 200, 401, 413 or 503). Never 429
    /// or 500: Customer.io pauses a webhook for an hour after those.
    pub status: StatusCode,
    /// The JSON body.
    pub body: AnswerBody,
}

impl EndpointResponse {
    /// The content type of the body.
    pub const CONTENT_TYPE: &'static str = "application/json";

    /// An answer of `status` with `body`.
    pub fn new(status: StatusCode, body: AnswerBody) -> Self {
        Self { status, body }
    }

    /// The body as JSON.
    pub fn to_json_bytes(&self) -> Bytes {
        self.body.to_json_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::SkipReason;

    #[test]
    fn the_json_shape_is_stable() {
        let mut body = AnswerBody::new();
        body.count(&Outcome::Delivered);
        body.count(&Outcome::Skipped(SkipReason::Duplicate));
        body.refused(Problem::new(
            Some(2),
            ProblemKind::Undecodable,
            "item 2: bad",
        ));
        body.retry_later(Problem::new(None, ProblemKind::Deadline, "late"));
        body.sort_problems();
        let json: serde_json::Value = serde_json::from_slice(&body.to_json_bytes()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "delivered": 1, "skipped": 1, "dead_lettered": 0, "retry_later": 1, "refused": 1,
                "problems": [
                    {"index": null, "kind": "deadline", "message": "late"},
                    {"index": 2, "kind": "undecodable", "message": "item 2: bad"}
                ]
            })
        );
        let back: AnswerBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn kinds_are_written_as_their_label() {
        for kind in [
            ProblemKind::Undecodable,
            ProblemKind::Refused,
            ProblemKind::RetryLater,
            ProblemKind::Signature,
            ProblemKind::Deadline,
            ProblemKind::TooLarge,
            ProblemKind::Unreadable,
            ProblemKind::Internal,
            ProblemKind::Overloaded,
            ProblemKind::RateLimited,
            ProblemKind::ShuttingDown,
            ProblemKind::Token,
        ] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.as_str().to_owned())
            );
        }
    }
}
