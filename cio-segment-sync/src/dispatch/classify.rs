//! The one failure classifier of the delivery engine.
//!
//! Every failed attempt, whichever vendor answered, becomes a [`Classification`]: a
//! [`FailureKind`], the [`SendPhase`] it happened in and any server-given delay. The vendor
//! crates each know their own API (`customerio_client::Error` and `segment_model`'s
//! `ClientError` record their own phase and kind); this module is the one place where those are
//! mapped onto the engine's terms, through `From` impls, so the dispatcher's retry decision
//! ([`decide`](super::decide)), the flows' ack rule ([`Classification::ack`]) and the dead-letter
//! reasons all read the same facts.
//!
//! | vendor answer | [`FailureKind`] |
//! |---|---|
//! | connect refused, timeout, reset | `Transient` |
//! | `429` | `Throttled` (the whole dispatcher pauses) |
//! | `408`, `5xx` (Segment: not `501`, `505`, `511`) | `Server` |
//! | a refused request: Customer.io `400`/`404`/`413`/`422`/other 4xx, a locally refused input; Segment `400`/`413`/`422` | `Rejected` (a batch is split) |
//! | credentials refused, configuration, an unreadable answer, Segment's other permanent statuses | `Permanent` |
//!
//! The three phase enums of the workspace (`customerio_client::Phase`,
//! `segment_model::client::Phase` and [`SendPhase`]) say the same three things; the vendor
//! crates do not depend on each other, so each keeps its own, and both convert into
//! [`SendPhase`] here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outcome::Ack;

/// When in the life of an attempt a failure happened. Decides whether a retry could write the
/// same data twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendPhase {
    /// Nothing reached the server (validation, a refused connect, no rate-limit token).
    NotSent,
    /// The request may have reached the server, but no answer was read (timeout, reset).
    MaybeSent,
    /// The server answered with an error status.
    ResponseReceived,
}

/// What kind of failure an attempt ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// A network failure or timeout. Worth retrying.
    Transient,
    /// The server asked us to slow down (`429`). Worth retrying after its delay; the whole
    /// dispatcher pauses.
    Throttled,
    /// A retryable server failure (`408`, `5xx`). Worth retrying.
    Server,
    /// The server refused the request as it stands (`400`, `413`, `422`, …). A batch of several
    /// items is split to find the bad ones; a single item is dead-lettered.
    Rejected,
    /// A failure no retry or split can fix (credentials refused, misconfiguration, an answer
    /// that could not be read). Every item of the batch is dead-lettered.
    Permanent,
}

impl FailureKind {
    /// Whether sending the same request again may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            FailureKind::Transient | FailureKind::Throttled | FailureKind::Server
        )
    }
}

/// The classification of one failed attempt: everything the retry decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// What kind of failure it was.
    pub kind: FailureKind,
    /// When it happened.
    pub phase: SendPhase,
    /// The delay the server asked for (`Retry-After`), if any.
    pub retry_after: Option<Duration>,
}

impl Classification {
    /// A classification with no server-given delay.
    pub const fn new(kind: FailureKind, phase: SendPhase) -> Self {
        Self {
            kind,
            phase,
            retry_after: None,
        }
    }

    /// The same classification with the server's `Retry-After` delay.
    pub const fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }
}

impl Classification {
    /// The ack rule for a flow that met this failure outside the dispatcher (an App API
    /// look-up, a Profile API read): a failure a retry may fix is [`Ack::RetryLater`], any other
    /// is [`Ack::Refuse`].
    pub fn ack(&self) -> Ack {
        if self.kind.is_retryable() {
            Ack::RetryLater
        } else {
            Ack::Refuse
        }
    }
}

impl From<customerio_client::Phase> for SendPhase {
    fn from(phase: customerio_client::Phase) -> Self {
        match phase {
            customerio_client::Phase::NotSent => SendPhase::NotSent,
            customerio_client::Phase::MaybeSent => SendPhase::MaybeSent,
            customerio_client::Phase::ResponseReceived => SendPhase::ResponseReceived,
        }
    }
}

impl From<segment_model::client::Phase> for SendPhase {
    fn from(phase: segment_model::client::Phase) -> Self {
        match phase {
            segment_model::client::Phase::NotSent => SendPhase::NotSent,
            segment_model::client::Phase::ResponseReceived => SendPhase::ResponseReceived,
            // `MaybeSent`, and any phase a later version adds: assume the worst.
            _ => SendPhase::MaybeSent,
        }
    }
}

/// Customer.io: `Client` (a refused request) and `Invalid` (refused locally before sending) are
/// [`FailureKind::Rejected`], so a batch is split to isolate the operation at fault; credential,
/// configuration and decoding failures are [`FailureKind::Permanent`].
impl From<&customerio_client::Error> for Classification {
    fn from(error: &customerio_client::Error) -> Self {
        use customerio_client::ErrorKind;
        let kind = match error.kind() {
            ErrorKind::Transient => FailureKind::Transient,
            ErrorKind::Throttled => FailureKind::Throttled,
            ErrorKind::Server => FailureKind::Server,
            ErrorKind::Client | ErrorKind::Invalid => FailureKind::Rejected,
            _ => FailureKind::Permanent,
        };
        Classification {
            kind,
            phase: error.phase().into(),
            retry_after: error.retry_after(),
        }
    }
}

/// Segment: its kinds map across; among its permanent statuses, `400`, `413` and `422` are
/// [`FailureKind::Rejected`] so a batch is split to isolate the message at fault.
impl From<&segment_model::client::ClientError> for Classification {
    fn from(error: &segment_model::client::ClientError) -> Self {
        use segment_model::client::FailureKind as Segment;
        let kind = match error.kind() {
            Segment::Transient => FailureKind::Transient,
            Segment::Throttled => FailureKind::Throttled,
            Segment::Server => FailureKind::Server,
            _ if matches!(error.status(), Some(400 | 413 | 422)) => FailureKind::Rejected,
            _ => FailureKind::Permanent,
        };
        Classification {
            kind,
            phase: error.phase().into(),
            retry_after: error.retry_after(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_throttled_and_server_failures_are_retryable() {
        assert!(FailureKind::Transient.is_retryable());
        assert!(FailureKind::Throttled.is_retryable());
        assert!(FailureKind::Server.is_retryable());
        assert!(!FailureKind::Rejected.is_retryable());
        assert!(!FailureKind::Permanent.is_retryable());
    }

    #[test]
    fn the_ack_rule_follows_retryability() {
        use FailureKind::*;
        for (kind, ack) in [
            (Transient, Ack::RetryLater),
            (Throttled, Ack::RetryLater),
            (Server, Ack::RetryLater),
            (Rejected, Ack::Refuse),
            (Permanent, Ack::Refuse),
        ] {
            let class = Classification::new(kind, SendPhase::ResponseReceived);
            assert_eq!(class.ack(), ack, "{kind:?}");
        }
    }

    #[test]
    fn vendor_phases_convert_one_to_one() {
        use customerio_client::Phase as Cio;
        use segment_model::client::Phase as Seg;
        assert_eq!(SendPhase::from(Cio::NotSent), SendPhase::NotSent);
        assert_eq!(SendPhase::from(Cio::MaybeSent), SendPhase::MaybeSent);
        assert_eq!(
            SendPhase::from(Cio::ResponseReceived),
            SendPhase::ResponseReceived
        );
        assert_eq!(SendPhase::from(Seg::NotSent), SendPhase::NotSent);
        assert_eq!(SendPhase::from(Seg::MaybeSent), SendPhase::MaybeSent);
        assert_eq!(
            SendPhase::from(Seg::ResponseReceived),
            SendPhase::ResponseReceived
        );
    }
}
