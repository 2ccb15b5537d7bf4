//! Every error of the crate says what failed once: its `Display` names what went wrong and
//! where, and never repeats the text of its `source()`, which stays reachable through the
//! chain (and [`describe`] joins them).

use std::error::Error as StdError;

use segment_model::Batch;
use serde_json::json;

use crate::builder::BuildError;
use crate::dispatch::{EncodeError, ResubmitError, SubmitError};
use crate::flows::audience::AudienceSyncError;
use crate::flows::backfill::BackfillError;
use crate::flows::churn::{ChurnError, DeliveryFailure};
use crate::flows::engagement::{EngagementError, FlowStep};
use crate::flows::forget::ForgetError;
use crate::flows::triggers::TriggersError;
use crate::mapping::to_customerio::MappingError;
use crate::mapping::to_segment::TranslateError;
use crate::outcome::{Ack, describe};
use crate::pipeline::{DeliverError, MapError, PipelineError, Step};
use crate::store::StoreError;

/// Walks `error` and its sources; fails when one of them writes its cause's text.
fn displays_once(error: &(dyn StdError + 'static)) {
    let mut current = Some(error);
    while let Some(outer) = current {
        let text = outer.to_string();
        assert!(
            !text.is_empty(),
            "an error of the chain has no text: {outer:?}"
        );
        if let Some(cause) = outer.source() {
            let cause_text = cause.to_string();
            assert!(
                !text.contains(&cause_text),
                "`{text}` repeats its source `{cause_text}`"
            );
        }
        current = outer.source();
    }
}

/// How many errors the chain holds, `error` included.
fn chain_len(error: &(dyn StdError + 'static)) -> usize {
    let mut count = 0;
    let mut current = Some(error);
    while let Some(e) = current {
        count += 1;
        current = e.source();
    }
    count
}

fn io_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused")
}

fn json_error() -> serde_json::Error {
    serde_json::from_str::<serde_json::Value>("{\"a\":").expect_err("ends early")
}

fn store_error() -> StoreError {
    StoreError::Unavailable {
        store: "redis deduper",
        source: Box::new(io_error()),
    }
}

fn client_error() -> customerio_client::Error {
    customerio_client::Error::invalid("track.v2.batch", "event name is longer than 100 bytes")
}

fn mapping_error() -> MappingError {
    MappingError::Operation {
        call: "track",
        source: client_error(),
    }
}

fn segment_error() -> segment_model::Error {
    segment_model::Message::track("Report Exported")
        .build()
        .expect_err("no identity")
}

fn batch_item() -> segment_model::BatchItemError {
    let lenient = Batch::from_value_lenient(json!({"batch": [
        {"type": "identify", "userId": "u1", "traits": "x"}
    ]}))
    .expect("the envelope decodes");
    lenient.errors.into_iter().next().expect("one bad item")
}

fn payload_error() -> customerio_client::webhook::PayloadError {
    customerio_client::webhook::ReportingEvent::from_slice(b"{\"event_id\":").expect_err("not JSON")
}

/// Asserts the chain of `error` has `len` errors, none repeating its source, and that
/// [`describe`] writes each of them.
fn check(error: &(dyn StdError + 'static), len: usize) {
    assert_eq!(chain_len(error), len, "{error:?}");
    displays_once(error);
    let described = describe(error);
    let mut current = error.source();
    while let Some(cause) = current {
        if !cause.is::<serde_json::Error>() {
            assert!(
                described.contains(&cause.to_string()),
                "`{described}` lost `{cause}`"
            );
        }
        current = cause.source();
    }
}

#[test]
fn store_and_pipeline_errors_display_once() {
    check(&store_error(), 2);
    check(
        &PipelineError::Store {
            step: Step::Dedupe,
            source: store_error(),
        },
        3,
    );
    check(&PipelineError::Delivery(DeliverError::new(io_error())), 3);
    check(&PipelineError::Mapping(MapError::new(mapping_error())), 4);
    check(&PipelineError::Unkeyable(json_error()), 2);
    check(
        &PipelineError::Stage {
            stage: "audience",
            ack: Ack::RetryLater,
            source: Box::new(AudienceSyncError::App(client_error())),
        },
        3,
    );
}

#[test]
fn mapping_errors_display_once() {
    let mapping = mapping_error();
    assert_eq!(
        mapping.to_string(),
        "track: the Customer.io client refused the operation"
    );
    check(&mapping, 2);
    assert_eq!(
        describe(&mapping),
        "track: the Customer.io client refused the operation: customer.io track.v2.batch: \
         invalid input: event name is longer than 100 bytes"
    );
    check(&TranslateError::Message(segment_error()), 3);
}

#[test]
fn flow_errors_display_once() {
    let item = TriggersError::Item(batch_item());
    check(&item, 3);
    assert_eq!(
        describe(&item),
        "the batch has an item that could not be decoded: `batch[0]` does not decode: \
         `traits`: expected an object, found a string"
    );
    check(&TriggersError::Decode(segment_error()), 3);

    check(&AudienceSyncError::App(client_error()), 2);
    check(&AudienceSyncError::Build(client_error()), 2);
    check(&AudienceSyncError::Store(store_error()), 2);

    check(&EngagementError::Payload(payload_error()), 3);
    check(
        &EngagementError::Store {
            step: FlowStep::LoopGuard,
            source: store_error(),
        },
        3,
    );
    check(
        &EngagementError::Translate(TranslateError::Message(segment_error())),
        4,
    );

    check(&BackfillError::RateLimiter(store_error()), 3);
    check(&BackfillError::Message(segment_error()), 3);
    check(&BackfillError::Mapping(MapError::new(mapping_error())), 4);
    check(&BackfillError::Delivery(DeliverError::new(io_error())), 3);

    check(&ForgetError::InvalidPerson(client_error()), 2);
    check(&ForgetError::Store(store_error()), 3);
    check(&ForgetError::Delivery(DeliverError::new(io_error())), 3);

    check(&ChurnError::Build(client_error()), 2);
    check(&ChurnError::Delivery(DeliveryFailure::RetryLater), 2);
    check(&ChurnError::Store(store_error()), 2);
}

#[test]
fn build_and_dispatch_errors_display_once() {
    check(
        &BuildError::Churn(ChurnError::Config {
            field: "inactive_days",
            problem: "must be at least 1",
        }),
        2,
    );
    check(&EncodeError::json(json_error()), 2);
    let submit = SubmitError::Encode {
        item: (),
        source: EncodeError::json(json_error()),
    };
    check(&submit, 3);
    check(
        &ResubmitError::<()>::Decode {
            index: 2,
            source: json_error(),
        },
        2,
    );
    check(
        &ResubmitError::Submit {
            index: 2,
            error: submit,
        },
        4,
    );
}

#[cfg(feature = "config")]
#[test]
fn config_errors_display_once() {
    let missing = std::env::temp_dir().join("cio-segment-sync-no-such-config.toml");
    let error = crate::config::SyncConfig::load(&missing).expect_err("no such file");
    check(&error, 2);
}
