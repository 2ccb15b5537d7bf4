//! Known-answer tests for the Webhooks destination signature check.
//!
//! Every expected hex value below was computed independently of this crate with OpenSSL, as
//! `printf '%s' '<body>' | openssl dgst -sha1 -hmac '<key>'`; the comment above each constant
//! names the exact key and input.

use segment_model::signature::{
    JsonErrorCategory, MalformedReason, SharedSecret, SignatureError, SignedContent,
    WebhookVerifier, sign, signed_bytes, verify, verify_with,
};

const KEY: &str = "whsec_5egment";

/// Event 1, compact, as `JSON.stringify` would write it.
const EVENT_1: &str =
    r#"{"type":"track","event":"Audience Entered","userId":"usr_1","messageId":"m-1"}"#;
/// `printf '%s' "$EVENT_1" | openssl dgst -sha1 -hmac 'whsec_5egment'`
const EVENT_1_SIG: &str = "7c21590b1eb9bd0116ca1de0445ff1dcaa1b2bda";
/// `printf '%s' "$EVENT_1" | openssl dgst -sha1 -hmac 'wrong_key'`
const EVENT_1_SIG_WRONG_KEY: &str = "b63c9cc42a364bbe2fd6e89d95a5f4cb3e44583d";

/// Event 3, compact.
const EVENT_3: &str =
    r#"{"type":"identify","userId":"usr_3","messageId":"m-3","traits":{"plan":"growth"}}"#;
/// `printf '%s' "$EVENT_3" | openssl dgst -sha1 -hmac 'whsec_5egment'`
const EVENT_3_SIG: &str = "ede9ef8285e0364f6b01b5e3cc65b262336a5bb4";

/// An event with whitespace inside it (spaces after `:` and `,`, a double space).
const SPACED_EVENT: &str = r#"{"type": "track", "event": "Email Opened",  "userId": "usr_2"}"#;
/// `printf '%s' "$SPACED_EVENT" | openssl dgst -sha1 -hmac 'whsec_5egment'`
const SPACED_EVENT_SIG: &str = "7396ce8fd8b86f0c0940ad6e80ff0e5b37c5cace";

/// `printf '%s' "[$EVENT_1,$EVENT_3]" | openssl dgst -sha1 -hmac 'whsec_5egment'`
/// (the whole compact batch body, which is NOT what Webhooks (Actions) signs).
const WHOLE_BATCH_SIG: &str = "40f810b43ad591b841b4e7911795f8c409263083";

/// `printf '%s' 'Grüße' | openssl dgst -sha1 -hmac 'whsec_5egment'` (UTF-8 input)
const UTF8_SIG: &str = "2b448d2de2451032cc0dce5d607475cbb9111fdd";

/// `printf '%s' '' | openssl dgst -sha1 -hmac 'whsec_5egment'`
const EMPTY_SIG: &str = "d976975ab9adf9fff0ebf468ef19925debfc6662";

fn secret() -> SharedSecret {
    SharedSecret::new(KEY)
}

fn batch(first: &str, rest: &str) -> String {
    format!("[{first},{rest}]")
}

#[test]
fn sign_matches_openssl_known_answers() {
    assert_eq!(sign(&secret(), EVENT_1.as_bytes()), EVENT_1_SIG);
    assert_eq!(sign(&secret(), EVENT_3.as_bytes()), EVENT_3_SIG);
    assert_eq!(sign(&secret(), SPACED_EVENT.as_bytes()), SPACED_EVENT_SIG);
    assert_eq!(sign(&secret(), "Grüße".as_bytes()), UTF8_SIG);
    assert_eq!(sign(&secret(), b""), EMPTY_SIG);
    assert_eq!(
        sign(&SharedSecret::new("wrong_key"), EVENT_1.as_bytes()),
        EVENT_1_SIG_WRONG_KEY
    );
    assert_eq!(
        sign(
            &SharedSecret::from_bytes(KEY.as_bytes()),
            EVENT_1.as_bytes()
        ),
        EVENT_1_SIG
    );
}

#[test]
fn single_event_body_verifies() {
    assert_eq!(
        verify(&secret(), Some(EVENT_1_SIG.as_bytes()), EVENT_1.as_bytes()),
        Ok(())
    );
    let whole = WebhookVerifier::new(secret()).with_signed_content(SignedContent::WholeBody);
    assert_eq!(
        whole.verify(Some(EVENT_1_SIG.as_bytes()), EVENT_1.as_bytes()),
        Ok(())
    );
}

#[test]
fn whitespace_inside_a_single_body_is_signed_as_sent() {
    assert_eq!(
        verify(
            &secret(),
            Some(SPACED_EVENT_SIG.as_bytes()),
            SPACED_EVENT.as_bytes()
        ),
        Ok(())
    );
    // The same event without the whitespace is different bytes, hence a different signature.
    let compact = r#"{"type":"track","event":"Email Opened","userId":"usr_2"}"#;
    assert_eq!(
        verify(
            &secret(),
            Some(SPACED_EVENT_SIG.as_bytes()),
            compact.as_bytes()
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn batched_body_is_checked_against_its_first_event() {
    let body = batch(EVENT_1, EVENT_3);
    assert_eq!(
        verify(&secret(), Some(EVENT_1_SIG.as_bytes()), body.as_bytes()),
        Ok(())
    );
    let strict =
        WebhookVerifier::new(secret()).with_signed_content(SignedContent::FirstArrayElement);
    assert_eq!(
        strict.verify(Some(EVENT_1_SIG.as_bytes()), body.as_bytes()),
        Ok(())
    );
    // The signature of the second event or of the whole array does not authenticate a batch.
    assert_eq!(
        verify(&secret(), Some(EVENT_3_SIG.as_bytes()), body.as_bytes()),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(&secret(), Some(WHOLE_BATCH_SIG.as_bytes()), body.as_bytes()),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn whole_body_mode_signs_an_array_body_whole() {
    let body = batch(EVENT_1, EVENT_3);
    let whole = WebhookVerifier::new(secret()).with_signed_content(SignedContent::WholeBody);
    assert_eq!(
        whole.verify(Some(WHOLE_BATCH_SIG.as_bytes()), body.as_bytes()),
        Ok(())
    );
    assert_eq!(
        whole.verify(Some(EVENT_1_SIG.as_bytes()), body.as_bytes()),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn batch_whitespace_between_elements_is_not_part_of_the_signed_text() {
    let body = format!("\n [\n  {EVENT_1} ,\n\t{EVENT_3}\n]\n");
    assert_eq!(
        verify(&secret(), Some(EVENT_1_SIG.as_bytes()), body.as_bytes()),
        Ok(())
    );
    assert_eq!(
        signed_bytes(SignedContent::Auto, body.as_bytes()),
        Ok(EVENT_1.as_bytes())
    );
}

#[test]
fn batch_whitespace_inside_the_first_event_is_kept_verbatim() {
    let body = batch(SPACED_EVENT, EVENT_3);
    assert_eq!(
        verify(
            &secret(),
            Some(SPACED_EVENT_SIG.as_bytes()),
            body.as_bytes()
        ),
        Ok(())
    );
}

#[test]
fn tampering_with_the_first_event_of_a_batch_is_detected() {
    let tampered = EVENT_1.replace("usr_1", "usr_9");
    let body = batch(&tampered, EVENT_3);
    assert_eq!(
        verify(&secret(), Some(EVENT_1_SIG.as_bytes()), body.as_bytes()),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn later_events_of_a_batch_are_not_covered() {
    // Documented limitation of Segment's scheme: only the first event is authenticated.
    let tampered = EVENT_3.replace("growth", "free");
    let body = batch(EVENT_1, &tampered);
    assert_eq!(
        verify(&secret(), Some(EVENT_1_SIG.as_bytes()), body.as_bytes()),
        Ok(())
    );
}

#[test]
fn uppercase_and_padded_headers_are_accepted() {
    let upper = EVENT_1_SIG.to_ascii_uppercase();
    assert_eq!(
        verify(&secret(), Some(upper.as_bytes()), EVENT_1.as_bytes()),
        Ok(())
    );
    let padded = format!(" \t{EVENT_1_SIG} ");
    assert_eq!(
        verify(&secret(), Some(padded.as_bytes()), EVENT_1.as_bytes()),
        Ok(())
    );
}

#[test]
fn wrong_key_is_a_mismatch() {
    assert_eq!(
        verify(
            &SharedSecret::new("wrong_key"),
            Some(EVENT_1_SIG.as_bytes()),
            EVENT_1.as_bytes()
        ),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(
            &secret(),
            Some(EVENT_1_SIG_WRONG_KEY.as_bytes()),
            EVENT_1.as_bytes()
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn missing_header_is_reported() {
    assert_eq!(
        verify(&secret(), None, EVENT_1.as_bytes()),
        Err(SignatureError::MissingHeader)
    );
}

#[test]
fn truncated_and_overlong_headers_are_malformed() {
    let truncated = &EVENT_1_SIG[..39];
    assert_eq!(
        verify(&secret(), Some(truncated.as_bytes()), EVENT_1.as_bytes()),
        Err(SignatureError::MalformedHeader {
            reason: MalformedReason::WrongLength { found: 39 }
        })
    );
    let overlong = format!("{EVENT_1_SIG}00");
    assert_eq!(
        verify(&secret(), Some(overlong.as_bytes()), EVENT_1.as_bytes()),
        Err(SignatureError::MalformedHeader {
            reason: MalformedReason::WrongLength { found: 42 }
        })
    );
    assert_eq!(
        verify(&secret(), Some(b""), EVENT_1.as_bytes()),
        Err(SignatureError::MalformedHeader {
            reason: MalformedReason::WrongLength { found: 0 }
        })
    );
    // A `sha1=` prefix (another vendor's convention) is not Segment's format.
    let prefixed = format!("sha1={}", &EVENT_1_SIG[..35]);
    assert_eq!(
        verify(&secret(), Some(prefixed.as_bytes()), EVENT_1.as_bytes()),
        Err(SignatureError::MalformedHeader {
            reason: MalformedReason::NotHex { index: 0 }
        })
    );
}

#[test]
fn non_hex_header_is_malformed_with_its_position() {
    let mut bad = EVENT_1_SIG.to_owned();
    bad.replace_range(7..8, "g");
    assert_eq!(
        verify(&secret(), Some(bad.as_bytes()), EVENT_1.as_bytes()),
        Err(SignatureError::MalformedHeader {
            reason: MalformedReason::NotHex { index: 7 }
        })
    );
}

#[test]
fn batch_body_that_is_not_json_is_reported_with_position() {
    let body = format!("[{EVENT_1},");
    let err = verify(&secret(), Some(EVENT_1_SIG.as_bytes()), body.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            SignatureError::BodyNotJson {
                line: 1,
                category: JsonErrorCategory::Eof,
                ..
            }
        ),
        "{err:?}"
    );

    let trailing = format!("[{EVENT_1}] trailing");
    let err = verify(&secret(), Some(EVENT_1_SIG.as_bytes()), trailing.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            SignatureError::BodyNotJson {
                category: JsonErrorCategory::Syntax,
                ..
            }
        ),
        "{err:?}"
    );

    // A broken element after the first one is still caught: the whole body must be JSON.
    let broken_tail = format!("[{EVENT_1},{{\"a\":]");
    assert!(matches!(
        verify(
            &secret(),
            Some(EVENT_1_SIG.as_bytes()),
            broken_tail.as_bytes()
        ),
        Err(SignatureError::BodyNotJson { .. })
    ));
}

#[test]
fn whole_body_mode_does_not_need_json() {
    let whole = WebhookVerifier::new(secret()).with_signed_content(SignedContent::WholeBody);
    assert_eq!(
        whole.verify(Some(UTF8_SIG.as_bytes()), "Grüße".as_bytes()),
        Ok(())
    );
    assert_eq!(whole.verify(Some(EMPTY_SIG.as_bytes()), b""), Ok(()));
}

#[test]
fn empty_batch_and_non_array_bodies_are_reported() {
    assert_eq!(
        verify(&secret(), Some(EVENT_1_SIG.as_bytes()), b" [ ] "),
        Err(SignatureError::EmptyBatch)
    );
    let strict =
        WebhookVerifier::new(secret()).with_signed_content(SignedContent::FirstArrayElement);
    assert_eq!(strict.signed_content(), SignedContent::FirstArrayElement);
    assert_eq!(
        strict.verify(Some(EVENT_1_SIG.as_bytes()), EVENT_1.as_bytes()),
        Err(SignatureError::NotABatch)
    );
    assert_eq!(
        strict.verify(Some(EVENT_1_SIG.as_bytes()), b"\"text\""),
        Err(SignatureError::NotABatch)
    );
}

#[test]
fn header_is_checked_before_the_body() {
    // A missing header is reported even when the body would fail to parse.
    assert_eq!(
        verify_with(&secret(), SignedContent::FirstArrayElement, None, b"[,"),
        Err(SignatureError::MissingHeader)
    );
}

#[test]
fn secrets_and_inputs_never_appear_in_debug_or_display() {
    let secret = secret();
    let verifier = WebhookVerifier::new(secret.clone());
    for text in [
        format!("{secret:?}"),
        format!("{secret}"),
        format!("{verifier:?}"),
    ] {
        assert!(!text.contains(KEY), "secret leaked in {text}");
        assert!(text.contains("redacted"), "{text}");
    }
    let errors = [
        verify(&secret, None, EVENT_1.as_bytes()).unwrap_err(),
        verify(&secret, Some(b"zz"), EVENT_1.as_bytes()).unwrap_err(),
        verify(&secret, Some(EVENT_3_SIG.as_bytes()), EVENT_1.as_bytes()).unwrap_err(),
        verify(
            &secret,
            Some(EVENT_1_SIG.as_bytes()),
            b"[{\"userId\":\"usr_1\"",
        )
        .unwrap_err(),
    ];
    for err in errors {
        let text = format!("{err} {err:?}");
        assert!(!text.contains(KEY), "{text}");
        assert!(!text.contains(EVENT_3_SIG), "{text}");
        assert!(!text.contains("usr_1"), "{text}");
    }
}
