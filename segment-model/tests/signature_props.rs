//! Property tests for the signature check, with a fixed seed so every run checks the same cases.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use segment_model::signature::{
    SharedSecret, SignatureError, SignedContent, WebhookVerifier, sign, verify,
};
use serde_json::{Map, Value};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x5e6_0e47),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A compact JSON object, as `JSON.stringify` would write an event.
fn event() -> impl Strategy<Value = String> {
    prop::collection::btree_map("[a-zA-Z_]{1,8}", "\\PC{0,16}", 0..6).prop_map(|fields| {
        let map: Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        serde_json::to_string(&map).expect("serialises")
    })
}

/// JSON whitespace.
fn ws() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![Just(' '), Just('\n'), Just('\t'), Just('\r')],
        0..3,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_batch_verifies_against_its_first_event_whatever_the_whitespace(
        key in prop::collection::vec(any::<u8>(), 0..80),
        events in prop::collection::vec((event(), ws(), ws()), 1..5),
        outer in (ws(), ws()),
    ) {
        let secret = SharedSecret::from_bytes(key);
        let mut body = format!("{}[", outer.0);
        for (i, (text, before, after)) in events.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(before);
            body.push_str(text);
            body.push_str(after);
        }
        body.push(']');
        body.push_str(&outer.1);

        let header = sign(&secret, events[0].0.as_bytes());
        prop_assert_eq!(verify(&secret, Some(header.as_bytes()), body.as_bytes()), Ok(()));
        let whole = sign(&secret, body.as_bytes());
        prop_assert_eq!(
            verify(&secret, Some(whole.as_bytes()), body.as_bytes()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_body_verifies_whole_and_any_changed_digit_fails(
        key in prop::collection::vec(any::<u8>(), 0..80),
        body in prop::collection::vec(any::<u8>(), 0..256),
        position in 0usize..40,
        replacement in "[0-9a-f]",
    ) {
        let secret = SharedSecret::from_bytes(key);
        let verifier = WebhookVerifier::new(secret.clone())
            .with_signed_content(SignedContent::WholeBody);
        let header = sign(&secret, &body);
        prop_assert_eq!(verifier.verify(Some(header.as_bytes()), &body), Ok(()));

        let mut changed = header.into_bytes();
        let new = replacement.as_bytes()[0];
        prop_assume!(changed[position] != new);
        changed[position] = new;
        prop_assert_eq!(verifier.verify(Some(&changed), &body), Err(SignatureError::Mismatch));
    }
}
