//! The two pipeline steps that are not store-backed traits of their own: mapping and delivery.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use customerio_client::track::v2::Operation;
use segment_model::Message;

use crate::dead_letter::DeadLetterReason;
use crate::identity::Target;
use crate::mapping::{self, Mapped, MappingConfig};

/// Turns a resolved Segment message into Customer.io Track v2 operations. No I/O.
///
/// [`ConfigMapper`] is the implementation over the [`mapping`](crate::mapping) module; a host
/// with its own rules writes another:
///
/// ```
/// use cio_segment_sync::customerio_client::track::v2::{Operation, PersonEvent, PersonOperation};
/// use cio_segment_sync::identity::{SkipReason, Target};
/// use cio_segment_sync::mapping::Mapped;
/// use cio_segment_sync::pipeline::{MapError, Mapper};
/// use cio_segment_sync::segment_model::Message;
///
/// /// Track calls of known people become events; everything else is filtered out.
/// #[derive(Debug)]
/// struct TracksOnly;
///
/// impl Mapper for TracksOnly {
///     fn map(&self, message: &Message, target: &Target) -> Result<Mapped, MapError> {
///         let (Some(name), Target::Person { identifier, .. }) = (message.event(), target) else {
///             return Ok(Mapped::Skip(SkipReason::Filtered));
///         };
///         let event = PersonEvent::new(identifier.clone(), name).map_err(MapError::new)?;
///         Ok(Mapped::Operations(vec![Operation::Person(PersonOperation::Event(event))]))
///     }
/// }
/// ```
pub trait Mapper: fmt::Debug + Send + Sync + 'static {
    /// The operations that write `message` to `target`, or why nothing is written. An empty
    /// list of operations writes nothing and counts as
    /// [`SkipReason::Filtered`](crate::identity::SkipReason::Filtered).
    fn map(&self, message: &Message, target: &Target) -> Result<Mapped, MapError>;
}

impl<T: Mapper + ?Sized> Mapper for Arc<T> {
    fn map(&self, message: &Message, target: &Target) -> Result<Mapped, MapError> {
        (**self).map(message, target)
    }
}

impl<T: Mapper + ?Sized> Mapper for Box<T> {
    fn map(&self, message: &Message, target: &Target) -> Result<Mapped, MapError> {
        (**self).map(message, target)
    }
}

/// The [`Mapper`] over the [`mapping`](crate::mapping) module and a [`MappingConfig`].
///
/// With [`MappingConfig::clamp_future_timestamps`] on, it reads the clock (Unix seconds) for
/// each message and calls [`mapping::map_at`]; otherwise [`mapping::map`]. Every
/// [`MappingError`](crate::mapping::MappingError) becomes a [`MapError`] with it as the source.
#[derive(Debug, Clone, Default)]
pub struct ConfigMapper {
    config: MappingConfig,
}

impl ConfigMapper {
    /// A mapper following `config`.
    pub fn new(config: MappingConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &MappingConfig {
        &self.config
    }
}

impl Mapper for ConfigMapper {
    fn map(&self, message: &Message, target: &Target) -> Result<Mapped, MapError> {
        let mapped = if self.config.clamp_future_timestamps {
            mapping::map_at(
                message,
                target,
                &self.config,
                jiff::Timestamp::now().as_second(),
            )
        } else {
            mapping::map(message, target, &self.config)
        };
        mapped.map_err(MapError::new)
    }
}

/// The message cannot be turned into valid operations (e.g. a value over a Customer.io limit).
///
/// Permanent: the same message fails the same way on every retry. The cause, naming the field,
/// is the [`source`](StdError::source).
#[derive(Debug, thiserror::Error)]
#[error("the message could not be mapped to Customer.io operations")]
pub struct MapError {
    #[source]
    source: Box<dyn StdError + Send + Sync + 'static>,
}

impl MapError {
    /// Wraps the mapping's own error.
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

/// Hands operations to the delivery engine and waits until they were accepted by Customer.io
/// or given up to a dead-letter sink.
///
/// `ordering_key` names the person the operations are about (see
/// [`ordering_key`](super::ordering_key)); operations with the same key must reach Customer.io in
/// the order they were handed over.
#[async_trait]
pub trait Deliver: fmt::Debug + Send + Sync + 'static {
    /// Delivers `operations`. `Ok` only when every operation was accepted
    /// ([`Delivered::Accepted`]) or refused for good and recorded as a dead letter
    /// ([`Delivered::DeadLettered`]); anything else — a failure that may pass, a full or
    /// closed queue, an item dropped unresolved — is an error, and the source must retry.
    async fn deliver(
        &self,
        operations: Vec<Operation>,
        ordering_key: &str,
    ) -> Result<Delivered, DeliverError>;
}

#[async_trait]
impl<T: Deliver + ?Sized> Deliver for Arc<T> {
    async fn deliver(
        &self,
        operations: Vec<Operation>,
        ordering_key: &str,
    ) -> Result<Delivered, DeliverError> {
        (**self).deliver(operations, ordering_key).await
    }
}

#[async_trait]
impl<T: Deliver + ?Sized> Deliver for Box<T> {
    async fn deliver(
        &self,
        operations: Vec<Operation>,
        ordering_key: &str,
    ) -> Result<Delivered, DeliverError> {
        (**self).deliver(operations, ordering_key).await
    }
}

/// How a [`Deliver::deliver`] call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivered {
    /// Customer.io accepted every operation.
    Accepted,
    /// At least one operation was refused for good and recorded in a dead-letter sink; the
    /// reason is the first refused operation's.
    DeadLettered(DeadLetterReason),
}

/// The operations were neither accepted nor dead-lettered: the source must retry.
#[derive(Debug, thiserror::Error)]
#[error("the operations were not delivered; retry later")]
pub struct DeliverError {
    #[source]
    source: Box<dyn StdError + Send + Sync + 'static>,
}

impl DeliverError {
    /// Wraps the delivery engine's error.
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use customerio_client::Identifier;
    use serde_json::json;

    use super::*;
    use crate::mapping::MappingError;

    fn person() -> Target {
        Target::Person {
            identifier: Identifier::id("u-1"),
            anonymous_id: None,
        }
    }

    fn track(timestamp: &str, event: &str) -> Message {
        Message::from_value(json!({
            "type": "track", "messageId": "m-1", "userId": "u-1", "event": event,
            "timestamp": timestamp
        }))
        .unwrap()
    }

    fn sent_timestamp(mapped: Mapped) -> i64 {
        let Mapped::Operations(ops) = mapped else {
            panic!("expected operations, got {mapped:?}");
        };
        serde_json::to_value(&ops).unwrap()[0]["timestamp"]
            .as_i64()
            .unwrap()
    }

    #[test]
    fn config_mapper_follows_the_mapping_module() {
        let message = track("2024-05-01T10:15:30.123Z", "Paid");
        let mapper = ConfigMapper::default();
        assert_eq!(
            mapper.map(&message, &person()).unwrap(),
            mapping::map(&message, &person(), &MappingConfig::default()).unwrap()
        );
    }

    #[test]
    fn config_mapper_clamps_future_timestamps_when_configured() {
        // Year 2200: after any clock this test runs on.
        let future = track("2200-01-01T00:00:00.000Z", "Paid");
        let future_seconds = 7_258_118_400;
        assert_eq!(
            sent_timestamp(ConfigMapper::default().map(&future, &person()).unwrap()),
            future_seconds
        );
        let config = MappingConfig {
            clamp_future_timestamps: true,
            ..MappingConfig::default()
        };
        let clamped = sent_timestamp(ConfigMapper::new(config).map(&future, &person()).unwrap());
        assert!(clamped < future_seconds, "{clamped}");
    }

    #[test]
    fn mapping_errors_become_map_errors_with_the_cause_as_source() {
        let message = track("2024-05-01T10:15:30.123Z", "Report Delivery Event");
        let err = ConfigMapper::default()
            .map(&message, &person())
            .unwrap_err();
        let source = err.source().expect("the mapping error is the source");
        assert!(source.downcast_ref::<MappingError>().is_some(), "{source}");
    }
}
