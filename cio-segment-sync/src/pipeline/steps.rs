//! The two pipeline steps that are not store-backed traits of their own: mapping and delivery.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use customerio_client::track::v2::Operation;
use segment_model::Message;

use crate::identity::{SkipReason, Target};

/// Turns a resolved Segment message into Customer.io Track v2 operations. Pure: no I/O.
///
/// ```
/// use cio_segment_sync::customerio_client::track::v2::{Operation, PersonEvent, PersonOperation};
/// use cio_segment_sync::identity::{SkipReason, Target};
/// use cio_segment_sync::pipeline::{MapError, Mapped, Mapper};
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
    /// The operations that write `message` to `target`, or why nothing is written.
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

/// What a [`Mapper`] made of a message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Mapped {
    /// Write these operations, in this order. An empty list writes nothing and counts as
    /// [`SkipReason::Filtered`].
    Operations(Vec<Operation>),
    /// Write nothing, for this reason.
    Skip(SkipReason),
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
    /// ([`Delivered::Accepted`]) or recorded as a dead letter ([`Delivered::DeadLettered`]);
    /// anything else — a full or closed queue, an item dropped unresolved — is an error, and the
    /// source must retry.
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
    /// At least one operation was given up and recorded in a dead-letter sink.
    DeadLettered {
        /// Why, without customer data.
        reason: String,
    },
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
