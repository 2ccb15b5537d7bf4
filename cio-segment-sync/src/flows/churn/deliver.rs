//! How the churn flow's operations reach Customer.io: [`OperationDeliverer`], implemented by
//! the Customer.io dispatcher handle, and the [`DeliveryFailure`] it reports.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use customerio_client::track::v2::Operation;

use crate::dispatch::{Delivery, DispatcherHandle, OrderingKey, Sink};
use crate::outcome::describe;

/// Why operations about a person were not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryFailure {
    /// The dispatcher refused the operation at submit (closed, too large, not encodable).
    #[error("the dispatcher refused the operation: {0}")]
    NotAccepted(String),
    /// The dispatcher gave the operation up to its dead-letter sink.
    #[error("the operation was dead-lettered ({0})")]
    DeadLettered(&'static str),
    /// The dispatcher dropped the operation unresolved (its worker stopped).
    #[error("the dispatcher dropped the operation without delivering it")]
    Dropped,
    /// The dispatcher stopped retrying a failure that may pass (Customer.io down for longer
    /// than the retry policy); the next scan tries the person again.
    #[error("the delivery engine stopped retrying a failure that may pass")]
    RetryLater,
}

/// Delivers Customer.io operations about one person and says whether every one was accepted.
///
/// The Customer.io dispatcher handle implements it (submitting each operation with the
/// person's ordering key and waiting for the completions); tests use a fake.
#[async_trait]
pub trait OperationDeliverer: fmt::Debug + Send + Sync + 'static {
    /// Delivers `operations` in order under `key`. `Ok` only once the server accepted all of
    /// them.
    async fn deliver(
        &self,
        operations: Vec<Operation>,
        key: OrderingKey,
    ) -> Result<(), DeliveryFailure>;
}

#[async_trait]
impl<T: OperationDeliverer + ?Sized> OperationDeliverer for Arc<T> {
    async fn deliver(
        &self,
        operations: Vec<Operation>,
        key: OrderingKey,
    ) -> Result<(), DeliveryFailure> {
        (**self).deliver(operations, key).await
    }
}

#[async_trait]
impl<S: Sink<Item = Operation>> OperationDeliverer for DispatcherHandle<S> {
    async fn deliver(
        &self,
        operations: Vec<Operation>,
        key: OrderingKey,
    ) -> Result<(), DeliveryFailure> {
        // Submit everything first so the operations share a request, then wait for each.
        let mut completions = Vec::with_capacity(operations.len());
        for operation in operations {
            let completion = self
                .submit(operation, Some(key))
                .await
                .map_err(|err| DeliveryFailure::NotAccepted(describe(&err)))?;
            completions.push(completion);
        }
        for completion in completions {
            match completion.await {
                Ok(Delivery::Delivered { .. }) => {}
                Ok(Delivery::DeadLettered { reason, .. }) => {
                    return Err(DeliveryFailure::DeadLettered(reason.label()));
                }
                Ok(Delivery::RetryLater { .. }) => return Err(DeliveryFailure::RetryLater),
                Err(_) => return Err(DeliveryFailure::Dropped),
            }
        }
        Ok(())
    }
}
