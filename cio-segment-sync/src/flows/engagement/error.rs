//! How an engagement webhook fails, and the ack each failure asks for.

use std::fmt;

use customerio_client::webhook::{PayloadError, SignatureError};

use crate::mapping::to_segment::TranslateError;
use crate::outcome::{Ack, AckRule};
use crate::store::StoreError;

/// Which store failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlowStep {
    /// Claiming the event id.
    Dedupe,
    /// Stamping the Segment event (remembering its messageId).
    LoopGuard,
}

impl fmt::Display for FlowStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlowStep::Dedupe => "dedupe",
            FlowStep::LoopGuard => "loop guard",
        })
    }
}

/// The webhook is not finished, or was refused. See [`AckRule::ack`].
///
/// No variant shows a customer id or email.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngagementError {
    /// The request failed the signature check: answer 401. Nothing was sent.
    #[error("the webhook signature check failed")]
    Signature(#[source] SignatureError),
    /// The body is authentic but does not decode. Keep it for a human and answer 2xx.
    #[error("the webhook payload could not be decoded")]
    Payload(#[source] PayloadError),
    /// The event cannot become a Segment event. Keep it for a human and answer 2xx.
    #[error("the webhook event could not be translated")]
    Translate(#[source] TranslateError),
    /// Another worker is handling this event id: retry later.
    #[error("another worker is handling this webhook event")]
    InFlight,
    /// A store failed: retry later.
    #[error("{step} step: store failed")]
    Store {
        /// Which step.
        step: FlowStep,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The dispatcher closed or dropped the event, or its dead letter was not recorded: retry
    /// later.
    #[error("the Segment event was not delivered: {0}")]
    Delivery(&'static str),
}

impl AckRule for EngagementError {
    /// [`Ack::Refuse`] for a request that is not authentic or an event that can never be used
    /// (every retry would fail the same way), [`Ack::RetryLater`] otherwise. The Customer.io
    /// endpoint answers a refused *authentic* event 200 and keeps it as a dead letter (a `4xx`
    /// pauses Customer.io's webhooks), a failed signature 401.
    fn ack(&self) -> Ack {
        match self {
            EngagementError::Signature(_)
            | EngagementError::Payload(_)
            | EngagementError::Translate(_) => Ack::Refuse,
            EngagementError::InFlight
            | EngagementError::Store { .. }
            | EngagementError::Delivery(_) => Ack::RetryLater,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_follow_the_one_ack_rule() {
        assert_eq!(
            EngagementError::Signature(SignatureError::Mismatch).ack(),
            Ack::Refuse
        );
        assert_eq!(EngagementError::InFlight.ack(), Ack::RetryLater);
        assert_eq!(
            EngagementError::Delivery("the dispatcher is closed").ack(),
            Ack::RetryLater
        );
        assert_eq!(
            EngagementError::Translate(TranslateError::Timestamp).ack(),
            Ack::Refuse
        );
        let store = EngagementError::Store {
            step: FlowStep::LoopGuard,
            source: StoreError::Full {
                store: "memory deduper",
                capacity: 1,
            },
        };
        assert_eq!(store.ack(), Ack::RetryLater);
        assert_eq!(store.to_string(), "loop guard step: store failed");
    }
}
