//! Customer.io reporting webhook: signature check and payload parse.
//!
//! The input is split into a timestamp header, a signature header and a body. Properties:
//! arbitrary headers never verify against a body unless they are its signature; a body
//! signed with the key always verifies; a parsed payload serialises and parses back to the
//! same JSON.
#![no_main]

use std::time::{Duration, SystemTime};

use customerio_client::webhook::{ReportingEvent, SignatureVerifier, WebhookSigningKey};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzzing-signing-key";

fn split(data: &[u8], max: u8) -> (&[u8], &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    rest.split_at(usize::from(len % max).min(rest.len()))
}

fuzz_target!(|data: &[u8]| {
    let (timestamp, rest) = split(data, 24);
    let (signature, body) = split(rest, 80);
    let key = WebhookSigningKey::new(KEY.to_vec()).expect("a non-empty key is valid");
    let verifier = SignatureVerifier::new(key.clone());
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_558_530);

    if verifier
        .verify(Some(timestamp), Some(signature), body, now)
        .is_ok()
    {
        // Only the real signature of (timestamp, body) may pass. `sign` takes the timestamp
        // as a number, so the check applies when the header is its canonical decimal form.
        let ts: u64 = std::str::from_utf8(timestamp)
            .ok()
            .and_then(|t| t.parse().ok())
            .expect("a verified timestamp is a number");
        if ts.to_string().as_bytes() == timestamp {
            assert!(
                key.sign(ts, body)
                    .as_bytes()
                    .eq_ignore_ascii_case(signature),
                "a forged signature verified"
            );
        }
    }

    // The body signed now verifies.
    let ts = 1_714_558_530_u64;
    let good = key.sign(ts, body);
    let ts_text = ts.to_string();
    verifier
        .verify(Some(ts_text.as_bytes()), Some(good.as_bytes()), body, now)
        .expect("a correctly signed body verifies");

    if let Ok(event) = ReportingEvent::from_slice(body) {
        let value = serde_json::to_value(&event).expect("a parsed event serialises");
        let bytes = serde_json::to_vec(&value).expect("a JSON value serialises");
        let again = ReportingEvent::from_slice(&bytes).expect("a serialised event parses");
        assert_eq!(
            serde_json::to_value(&again).expect("a parsed event serialises"),
            value,
            "the round trip is not a fixed point"
        );
        let _ = format!("{event:?}");
    }
});
