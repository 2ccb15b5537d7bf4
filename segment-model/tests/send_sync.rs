//! Compile-time lock: the public types can cross threads and be boxed as errors.

use segment_model::{
    Batch, BatchItemError, Context, Error, Integrations, LenientBatch, Message, Timestamp,
    TrackBuilder, Violations,
};

fn send_sync<T: Send + Sync + 'static>() {}

fn std_error<T: std::error::Error + Send + Sync + 'static>() {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<Message>();
    send_sync::<Batch>();
    send_sync::<LenientBatch>();
    send_sync::<Context>();
    send_sync::<Integrations>();
    send_sync::<Timestamp>();
    send_sync::<TrackBuilder>();
    std_error::<Error>();
    std_error::<BatchItemError>();
    std_error::<Violations>();
    // The error converts into the usual boxed form.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::MissingType);
    assert_eq!(boxed.to_string(), "`type` is missing");
}
