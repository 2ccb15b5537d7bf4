//! Every error says what failed once: its `Display` never repeats the text of its
//! `source()`, which stays reachable through the chain.

use std::error::Error as StdError;

use segment_model::webhook::WebhookBody;
use segment_model::{Batch, Message};
use serde_json::json;

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

#[test]
fn decode_errors_display_once() {
    let batch_item = Batch::from_value(json!({"batch": [
        {"type": "track", "userId": "u1", "event": "A"},
        {"type": "identify", "userId": "u2", "traits": "x"}
    ]}))
    .expect_err("item 1 is bad");
    assert_eq!(chain_len(&batch_item), 2);
    displays_once(&batch_item);

    let lenient = Batch::from_value_lenient(json!({"batch": [
        {"type": "track", "userId": "u1", "event": {}}
    ]}))
    .expect("the envelope decodes");
    assert_eq!(lenient.errors.len(), 1);
    assert_eq!(chain_len(&lenient.errors[0]), 2);
    displays_once(&lenient.errors[0]);

    let invalid = Message::track("Report Exported")
        .build()
        .expect_err("no identity");
    assert_eq!(chain_len(&invalid), 2);
    displays_once(&invalid);

    for text in [
        r#"{"type": "track""#,
        r#"{"type": 3}"#,
        r#"{"type": "launch"}"#,
        r#"{"type": "identify", "userId": "u1", "timestamp": "yesterday"}"#,
    ] {
        displays_once(&Message::from_str(text).expect_err("bad message"));
    }
}

#[test]
fn webhook_body_errors_display_once() {
    let item = WebhookBody::from_slice(br#"[{"type": "track", "userId": "u1", "event": 42}]"#)
        .expect("the body decodes");
    assert_eq!(chain_len(&item.errors[0]), 2);
    displays_once(&item.errors[0]);

    for body in [
        &br#"{"type": "track", "userId": "u1", "event": 42}"#[..],
        br#"{"batch": [{"type": "track", "userId": "u1", "event": "A"}], "sentAt": 7}"#,
        b"[]",
        b"{\"type\": ",
        b"\"a string\"",
    ] {
        displays_once(&WebhookBody::from_slice(body).expect_err("unusable body"));
    }
}

#[test]
fn signature_and_audience_errors_display_once() {
    use segment_model::signature::{SharedSecret, WebhookVerifier};

    let verifier = WebhookVerifier::new(SharedSecret::new("shh"));
    for header in [None, Some(&b"abc"[..]), Some(&[b'0'; 40][..])] {
        displays_once(&verifier.verify(header, b"{}").expect_err("not signed"));
    }

    let message = Message::from_value(json!({
        "type": "track",
        "userId": "u1",
        "event": "Audience Entered",
        "properties": {"audience_key": "vip"},
        "context": {"personas": {"computation_class": "audience"}}
    }))
    .expect("a message");
    if let Err(error) = segment_model::AudienceChange::from_message(&message) {
        displays_once(&error);
    }
}

#[cfg(feature = "client")]
mod client {
    use std::time::Duration;

    use segment_model::client::BaseUrl;
    use segment_model::client::tracking::{TrackingClient, WriteKey};
    use serde_json::{Map, Value, json};

    use super::{chain_len, displays_once};

    #[test]
    fn a_base_url_that_does_not_parse_names_its_cause_once() {
        let error = BaseUrl::parse("not a url").expect_err("not a URL");
        assert_eq!(error.to_string(), "the base URL is not a valid URL");
        assert_eq!(chain_len(&error), 2);
        displays_once(&error);
        for text in [
            "ftp://example.com",
            "http://user:pw@example.com",
            "http://h/?q",
        ] {
            displays_once(&BaseUrl::parse(text).expect_err("refused"));
        }
    }

    #[tokio::test]
    async fn a_transport_failure_names_its_cause_once() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let client = TrackingClient::builder(WriteKey::new("wk"))
            .base_url(BaseUrl::parse(&format!("http://127.0.0.1:{port}")).expect("url"))
            .timeout(Duration::from_millis(500))
            .build()
            .expect("client");
        let message: Map<String, Value> = json!({"type": "track", "userId": "u1", "event": "A"})
            .as_object()
            .cloned()
            .expect("an object");
        let report = client.send_batch(vec![message]).await;
        let error = report.requests[0]
            .result
            .as_ref()
            .expect_err("nothing listens");
        assert!(chain_len(error) >= 2, "{error:?}");
        displays_once(error);
    }
}
