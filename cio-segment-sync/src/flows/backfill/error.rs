//! How a backfill fails, and the ack each failure asks for.

use std::time::Duration;

use segment_model::client::ClientError;
use segment_model::client::profile::ExternalIdError;

use crate::outcome::{Ack, AckRule};
use crate::pipeline::{DeliverError, MapError};
use crate::store::StoreError;

/// The backfill did not finish. See [`AckRule::ack`].
///
/// No variant shows a customer id or email.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillError {
    /// The Profile API request failed.
    #[error("the Profile API lookup failed")]
    Profile(#[source] ClientError),
    /// The Profile API's paging went wrong (a cursor that repeats, too many pages).
    #[error("the Profile API lookup failed: {0}")]
    Paging(&'static str),
    /// The lookup id was refused by the Profile client.
    #[error("the profile lookup id is invalid")]
    Lookup(#[source] ExternalIdError),
    /// The rate limiter's store failed.
    #[error("the Profile API rate limiter failed")]
    RateLimiter(#[source] StoreError),
    /// The dedupe store failed.
    #[error("dedupe step: store failed")]
    Dedupe(#[source] StoreError),
    /// Another worker is handling this webhook event.
    #[error("another worker is handling this webhook event")]
    InFlight,
    /// The identify message could not be built from the traits.
    #[error("the identify message could not be built from the profile")]
    Message(#[source] segment_model::Error),
    /// The traits cannot be mapped to Customer.io operations.
    #[error("the profile could not be mapped to Customer.io operations")]
    Mapping(#[source] MapError),
    /// The operations were neither accepted nor dead-lettered.
    #[error("the Customer.io delivery failed")]
    Delivery(#[source] DeliverError),
}

use crate::dispatch::Classification;

impl AckRule for BackfillError {
    /// [`Ack::Refuse`] for inputs that can never work and Profile API refusals no retry fixes;
    /// [`Ack::RetryLater`] for everything that may pass.
    fn ack(&self) -> Ack {
        match self {
            // The engine's one classifier decides for the vendor's error.
            BackfillError::Profile(error) => Classification::from(error).ack(),
            BackfillError::Lookup(_) | BackfillError::Message(_) | BackfillError::Mapping(_) => {
                Ack::Refuse
            }
            _ => Ack::RetryLater,
        }
    }
}

impl BackfillError {
    /// The delay Segment asked for (a `429`'s `Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BackfillError::Profile(error) => error.retry_after(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_follow_the_one_ack_rule() {
        assert_eq!(BackfillError::InFlight.ack(), Ack::RetryLater);
        assert_eq!(BackfillError::Paging("x").ack(), Ack::RetryLater);
        assert_eq!(
            BackfillError::Lookup(ExternalIdError::EmptyValue).ack(),
            Ack::Refuse
        );
        assert_eq!(BackfillError::InFlight.retry_after(), None);
    }
}
