//! Every error says what failed once: its `Display` never repeats the text of its
//! `source()`, which stays reachable through the chain.

use std::error::Error as StdError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use customerio_client::Error;
use customerio_client::Identifier;
use customerio_client::track::packer::{BatchPacker, PackerLimits};
use customerio_client::track::v2::{Operation, PersonEvent};
use customerio_client::webhook::{
    PayloadError, ReportingEvent, SignatureVerifier, WebhookError, WebhookSigningKey,
};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

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

fn json_error() -> serde_json::Error {
    serde_json::from_slice::<serde_json::Value>(b"{\"a\":").expect_err("ends early")
}

#[test]
fn client_errors_display_once() {
    let decode = Error::decode("track.v2.batch", StatusCode::OK, b"{\"a\":", json_error());
    assert_eq!(chain_len(&decode), 2);
    displays_once(&decode);

    let invalid = Error::invalid("track.v2.batch", "operation 0 could not be serialised")
        .with_source(json_error());
    assert_eq!(chain_len(&invalid), 2);
    displays_once(&invalid);

    let status = Error::status(
        "track.v1.identify",
        StatusCode::TOO_MANY_REQUESTS,
        &HeaderMap::new(),
        br#"{"meta":{"error":"slow down"}}"#,
        SystemTime::now(),
    );
    displays_once(&status);
    displays_once(&Error::config("the base URL has no host"));
}

#[tokio::test]
async fn a_transport_failure_names_its_cause_once() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let failure = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v2/batch"))
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .expect_err("nothing listens");
    let error = Error::transport("track.v2.batch", failure);
    assert!(chain_len(&error) >= 2, "{error:?}");
    displays_once(&error);
}

#[test]
fn packer_rejections_display_once() {
    let big: Operation = PersonEvent::new(Identifier::id("u"), "e")
        .expect("an event")
        .with_attribute("p", "x".repeat(40_000))
        .expect("an attribute")
        .into();
    let mut packer = BatchPacker::new(PackerLimits::default());
    let rejected = packer.push(big, 0_usize).expect_err("too large");
    assert_eq!(chain_len(&rejected), 2);
    displays_once(&rejected);
}

#[test]
fn webhook_errors_display_once() {
    let syntax = ReportingEvent::from_slice(b"{\"event_id\":").expect_err("not JSON");
    assert!(matches!(syntax, PayloadError::Syntax { .. }));
    assert_eq!(chain_len(&syntax), 2);
    displays_once(&syntax);
    for body in [
        &b"[1]"[..],
        br#"{"event_id":""}"#,
        br#"{"metric":"opened"}"#,
    ] {
        displays_once(&ReportingEvent::from_slice(body).expect_err("not an event"));
    }

    let key = WebhookSigningKey::new("key").expect("a key");
    let verifier = SignatureVerifier::new(key.clone());
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let body = b"{\"event_id\":";
    let mut headers = HeaderMap::new();
    headers.insert("x-cio-timestamp", HeaderValue::from_static("1700000000"));
    let signature = key.sign(1_700_000_000, body);
    headers.insert(
        "x-cio-signature",
        HeaderValue::from_str(&signature).expect("hex is a header value"),
    );
    let payload = verifier
        .verify_and_parse(&headers, body, now)
        .expect_err("authentic but not JSON");
    assert!(matches!(payload, WebhookError::Payload(_)));
    assert_eq!(chain_len(&payload), 3);
    displays_once(&payload);

    let forged = verifier
        .verify_and_parse(&HeaderMap::new(), body, now)
        .expect_err("not signed");
    assert!(matches!(forged, WebhookError::Signature(_)));
    assert_eq!(chain_len(&forged), 2);
    displays_once(&forged);
}
