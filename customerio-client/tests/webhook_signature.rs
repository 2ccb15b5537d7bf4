//! Signature checks against known answers computed outside Rust with OpenSSL.
//!
//! Every expected hex string below was produced in a shell with the command quoted beside it,
//! where `$B` is exactly the bytes of [`BODY`]:
//!
//! ```text
//! B='{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","object_type":"email","metric":"opened","timestamp":1700000000,"data":{"delivery_id":"RPILAgUBcRhIBqSfeiIwdIYJKxTY"}}'
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use customerio_client::webhook::{
    DEFAULT_TOLERANCE, InvalidSigningKey, Metric, SIGNATURE_HEADER, SignatureError,
    SignatureVerifier, TIMESTAMP_HEADER, WebhookError, WebhookSigningKey,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

const BODY: &[u8] = br#"{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","object_type":"email","metric":"opened","timestamp":1700000000,"data":{"delivery_id":"RPILAgUBcRhIBqSfeiIwdIYJKxTY"}}"#;
const TS: &[u8] = b"1700000000";
const TS_SECS: u64 = 1_700_000_000;

/// `printf 'v0:1700000000:%s' "$B" | openssl dgst -sha256 -hmac 'key'`
const SIG_KEY: &str = "218b379b6c86d8a137f713756e93fb60f45f9dbf6a3acefd37ae184153d5570f";
/// `printf 'v0:1700000000:' | openssl dgst -sha256 -hmac 'key'`
const SIG_EMPTY_BODY: &str = "e5989a35a70826941794ffd8396cac681dc76f1136cb404c861f7fc928a2afbf";
/// `printf 'v0:01700000000:%s' "$B" | openssl dgst -sha256 -hmac 'key'`
const SIG_LEADING_ZERO_TS: &str =
    "b47edef944eef30273ec6976834fdfdf315534fb5a7ea8de04896abc2f288359";
/// `printf 'v0:1700000000:%s' "$B" | openssl dgst -sha256 -hmac 'yek'`
const SIG_OTHER_KEY: &str = "6aa73b0a5f5c73ca47344655f3f55d360e8a612fce0fe088ec708545c4f98fbb";
/// `printf 'v0:1700000000:%s' "$B" | openssl dgst -sha256 -hmac "$LONG_KEY"` with `$LONG_KEY`
/// = [`LONG_KEY`] (longer than SHA-256's 64-byte block, so HMAC hashes the key first).
const SIG_LONG_KEY: &str = "1d6ef8e9dd7945ccfcc0ddcd0e33512126e7424e642911614e27f8304c30525a";
const LONG_KEY: &str =
    "a-signing-key-that-is-longer-than-the-sixty-four-byte-block-size-of-sha256!!";

fn key(secret: &str) -> WebhookSigningKey {
    match WebhookSigningKey::new(secret) {
        Ok(key) => key,
        Err(err) => panic!("test key rejected: {err}"),
    }
}

fn verifier() -> SignatureVerifier {
    SignatureVerifier::new(key("key"))
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn check(ts: &[u8], sig: &str, body: &[u8], now: SystemTime) -> Result<u64, SignatureError> {
    verifier().verify(Some(ts), Some(sig.as_bytes()), body, now)
}

#[test]
fn known_answer_verifies() {
    assert_eq!(check(TS, SIG_KEY, BODY, at(TS_SECS)), Ok(TS_SECS));
}

#[test]
fn sign_matches_openssl() {
    let key = key("key");
    assert_eq!(key.sign(TS_SECS, BODY), SIG_KEY);
    assert_eq!(key.sign(TS_SECS, b""), SIG_EMPTY_BODY);
    assert_eq!(self::key("yek").sign(TS_SECS, BODY), SIG_OTHER_KEY);
    assert_eq!(self::key(LONG_KEY).sign(TS_SECS, BODY), SIG_LONG_KEY);
}

#[test]
fn key_longer_than_block_size_verifies() {
    let verifier = SignatureVerifier::new(key(LONG_KEY));
    assert_eq!(
        verifier.verify(Some(TS), Some(SIG_LONG_KEY.as_bytes()), BODY, at(TS_SECS)),
        Ok(TS_SECS)
    );
}

#[test]
fn wrong_key_is_a_mismatch() {
    // The request was signed with 'yek'; we verify with 'key'.
    assert_eq!(
        check(TS, SIG_OTHER_KEY, BODY, at(TS_SECS)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn body_changed_by_one_byte_is_a_mismatch() {
    let mut body = BODY.to_vec();
    // Flip one bit of one byte at each position in turn: every change must be caught.
    for index in 0..body.len() {
        body[index] ^= 0x01;
        assert_eq!(
            check(TS, SIG_KEY, &body, at(TS_SECS)),
            Err(SignatureError::Mismatch),
            "byte {index} changed"
        );
        body[index] ^= 0x01;
    }
    // One byte appended or removed.
    let mut longer = BODY.to_vec();
    longer.push(b' ');
    assert_eq!(
        check(TS, SIG_KEY, &longer, at(TS_SECS)),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(TS, SIG_KEY, &BODY[..BODY.len() - 1], at(TS_SECS)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn signature_changed_by_one_digit_is_a_mismatch() {
    let mut sig = SIG_KEY.to_owned().into_bytes();
    let last = sig.len() - 1;
    sig[last] = if sig[last] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        verifier().verify(Some(TS), Some(&sig), BODY, at(TS_SECS)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn timestamp_header_is_part_of_the_signed_string() {
    // Same body and key, signature for 1700000000, header says 1700000001.
    assert_eq!(
        check(b"1700000001", SIG_KEY, BODY, at(TS_SECS)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn timestamp_header_is_signed_byte_for_byte() {
    // "01700000000" is the same number but a different signed string.
    assert_eq!(
        check(b"01700000000", SIG_LEADING_ZERO_TS, BODY, at(TS_SECS)),
        Ok(TS_SECS)
    );
    assert_eq!(
        check(b"01700000000", SIG_KEY, BODY, at(TS_SECS)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn uppercase_and_mixed_case_hex_are_accepted() {
    // Decision: the header is hex-decoded and the bytes compared, so case does not matter.
    let upper = SIG_KEY.to_ascii_uppercase();
    assert_eq!(check(TS, &upper, BODY, at(TS_SECS)), Ok(TS_SECS));
    let mixed: String = SIG_KEY
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    assert_eq!(check(TS, &mixed, BODY, at(TS_SECS)), Ok(TS_SECS));
}

#[test]
fn empty_body_verifies() {
    assert_eq!(check(TS, SIG_EMPTY_BODY, b"", at(TS_SECS)), Ok(TS_SECS));
    assert_eq!(
        check(TS, SIG_KEY, b"", at(TS_SECS)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn default_tolerance_is_five_minutes_inclusive() {
    assert_eq!(DEFAULT_TOLERANCE, Duration::from_secs(300));
    assert_eq!(verifier().tolerance(), Some(Duration::from_secs(300)));
    assert_eq!(check(TS, SIG_KEY, BODY, at(TS_SECS + 300)), Ok(TS_SECS));
    assert_eq!(check(TS, SIG_KEY, BODY, at(TS_SECS - 300)), Ok(TS_SECS));
}

#[test]
fn stale_timestamp_is_rejected() {
    let err = check(TS, SIG_KEY, BODY, at(TS_SECS + 301));
    assert_eq!(
        err,
        Err(SignatureError::TooOld {
            age_secs: 301,
            tolerance_secs: 300
        })
    );
    assert!(err.is_err_and(|e| e.is_stale()));
}

#[test]
fn future_timestamp_beyond_tolerance_is_rejected() {
    let err = check(TS, SIG_KEY, BODY, at(TS_SECS - 301));
    assert_eq!(
        err,
        Err(SignatureError::TooNew {
            ahead_secs: 301,
            tolerance_secs: 300
        })
    );
    assert!(err.is_err_and(|e| e.is_stale()));
}

#[test]
fn sub_second_parts_of_now_do_not_widen_the_window() {
    // 300.9 s after signing is still within 300 whole seconds.
    let now = at(TS_SECS + 300) + Duration::from_millis(900);
    assert_eq!(check(TS, SIG_KEY, BODY, now), Ok(TS_SECS));
}

#[test]
fn tolerance_is_configurable() {
    let strict = verifier().with_tolerance(Duration::from_secs(10));
    assert_eq!(
        strict.verify(Some(TS), Some(SIG_KEY.as_bytes()), BODY, at(TS_SECS + 11)),
        Err(SignatureError::TooOld {
            age_secs: 11,
            tolerance_secs: 10
        })
    );
    assert_eq!(
        strict.verify(Some(TS), Some(SIG_KEY.as_bytes()), BODY, at(TS_SECS + 10)),
        Ok(TS_SECS)
    );

    let unchecked = verifier().without_timestamp_check();
    assert_eq!(unchecked.tolerance(), None);
    // Seven days late (Customer.io's longest retry) and a year early both pass.
    for now in [at(TS_SECS + 7 * 86_400), at(TS_SECS - 365 * 86_400)] {
        assert_eq!(
            unchecked.verify(Some(TS), Some(SIG_KEY.as_bytes()), BODY, now),
            Ok(TS_SECS)
        );
    }
    // ... but the signature is still checked.
    assert_eq!(
        unchecked.verify(Some(TS), Some(SIG_OTHER_KEY.as_bytes()), BODY, at(TS_SECS)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn signature_is_checked_before_the_window() {
    // A forged request with an old timestamp reports the forgery, not the age.
    assert_eq!(
        check(TS, SIG_OTHER_KEY, BODY, at(TS_SECS + 10_000)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn missing_headers_are_named() {
    let v = verifier();
    assert_eq!(
        v.verify(None, Some(SIG_KEY.as_bytes()), BODY, at(TS_SECS)),
        Err(SignatureError::MissingHeader {
            header: TIMESTAMP_HEADER
        })
    );
    assert_eq!(
        v.verify(Some(TS), None, BODY, at(TS_SECS)),
        Err(SignatureError::MissingHeader {
            header: SIGNATURE_HEADER
        })
    );
    assert_eq!(
        v.verify(None, None, BODY, at(TS_SECS)),
        Err(SignatureError::MissingHeader {
            header: TIMESTAMP_HEADER
        })
    );
}

#[test]
fn non_numeric_timestamps_are_rejected() {
    for ts in [
        b"".as_slice(),
        b"17000000a0",
        b"-1700000000",
        b"+1700000000",
        b" 1700000000",
        b"1700000000 ",
        b"1700000000.5",
        b"1.7e9",
        b"99999999999999999999",
        b"\xff\xfe",
    ] {
        assert_eq!(
            check(ts, SIG_KEY, BODY, at(TS_SECS)),
            Err(SignatureError::InvalidTimestamp),
            "timestamp {:?}",
            String::from_utf8_lossy(ts)
        );
    }
}

#[test]
fn malformed_signatures_are_rejected() {
    let too_short = &SIG_KEY[..63];
    let too_long = format!("{SIG_KEY}0");
    let truncated_tag = &SIG_KEY[..62];
    let prefixed = format!("sha256={SIG_KEY}");
    let non_hex = format!("{}zz", &SIG_KEY[..62]);
    let spaced = format!(" {SIG_KEY}");
    for sig in [
        "",
        too_short,
        truncated_tag,
        too_long.as_str(),
        prefixed.as_str(),
        non_hex.as_str(),
        spaced.as_str(),
    ] {
        assert_eq!(
            check(TS, sig, BODY, at(TS_SECS)),
            Err(SignatureError::MalformedSignature),
            "signature {sig:?}"
        );
    }
}

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => name,
            Err(err) => panic!("bad test header name: {err}"),
        };
        let value = match HeaderValue::from_bytes(value) {
            Ok(value) => value,
            Err(err) => panic!("bad test header value: {err}"),
        };
        map.append(name, value);
    }
    map
}

#[test]
fn header_map_lookup_is_case_insensitive() {
    for (ts_name, sig_name) in [
        ("X-CIO-Timestamp", "X-CIO-Signature"),
        ("x-cio-timestamp", "x-cio-signature"),
        ("X-Cio-TIMESTAMP", "x-CIO-signature"),
    ] {
        let map = headers(&[(ts_name, TS), (sig_name, SIG_KEY.as_bytes())]);
        assert_eq!(
            verifier().verify_headers(&map, BODY, at(TS_SECS)),
            Ok(TS_SECS)
        );
    }
}

#[test]
fn header_map_missing_and_duplicate_headers() {
    let only_sig = headers(&[("x-cio-signature", SIG_KEY.as_bytes())]);
    assert_eq!(
        verifier().verify_headers(&only_sig, BODY, at(TS_SECS)),
        Err(SignatureError::MissingHeader {
            header: TIMESTAMP_HEADER
        })
    );
    let only_ts = headers(&[("x-cio-timestamp", TS)]);
    assert_eq!(
        verifier().verify_headers(&only_ts, BODY, at(TS_SECS)),
        Err(SignatureError::MissingHeader {
            header: SIGNATURE_HEADER
        })
    );
    // A second signature header, even a valid one, makes the request ambiguous.
    let two_sigs = headers(&[
        ("x-cio-timestamp", TS),
        ("x-cio-signature", SIG_KEY.as_bytes()),
        ("x-cio-signature", SIG_KEY.as_bytes()),
    ]);
    assert_eq!(
        verifier().verify_headers(&two_sigs, BODY, at(TS_SECS)),
        Err(SignatureError::DuplicateHeader {
            header: SIGNATURE_HEADER
        })
    );
    let two_ts = headers(&[
        ("x-cio-timestamp", TS),
        ("x-cio-timestamp", TS),
        ("x-cio-signature", SIG_KEY.as_bytes()),
    ]);
    assert_eq!(
        verifier().verify_headers(&two_ts, BODY, at(TS_SECS)),
        Err(SignatureError::DuplicateHeader {
            header: TIMESTAMP_HEADER
        })
    );
}

#[test]
fn system_clock_variants_use_the_current_time() {
    // 1700000000 is November 2023: far outside five minutes of any current clock.
    let map = headers(&[
        ("x-cio-timestamp", TS),
        ("x-cio-signature", SIG_KEY.as_bytes()),
    ]);
    assert!(matches!(
        verifier().verify_headers_now(&map, BODY),
        Err(SignatureError::TooOld { .. })
    ));
    assert!(matches!(
        verifier().verify_now(Some(TS), Some(SIG_KEY.as_bytes()), BODY),
        Err(SignatureError::TooOld { .. })
    ));
    // Signed "now" passes.
    let now_secs = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs(),
        Err(err) => panic!("clock before 1970: {err}"),
    };
    let sig = key("key").sign(now_secs, BODY);
    let ts = now_secs.to_string();
    assert_eq!(
        verifier().verify_now(Some(ts.as_bytes()), Some(sig.as_bytes()), BODY),
        Ok(now_secs)
    );
}

#[test]
fn verify_and_parse_checks_then_decodes() {
    let good = headers(&[
        ("x-cio-timestamp", TS),
        ("x-cio-signature", SIG_KEY.as_bytes()),
    ]);
    let event = match verifier().verify_and_parse(&good, BODY, at(TS_SECS)) {
        Ok(event) => event,
        Err(err) => panic!("valid request refused: {err}"),
    };
    assert_eq!(event.event_id, "01E4C4CT6YDC7Y5M7FE1GWWPQJ");
    assert_eq!(event.metric, Metric::Opened);

    let forged = headers(&[
        ("x-cio-timestamp", TS),
        ("x-cio-signature", SIG_OTHER_KEY.as_bytes()),
    ]);
    assert!(matches!(
        verifier().verify_and_parse(&forged, BODY, at(TS_SECS)),
        Err(WebhookError::Signature(SignatureError::Mismatch))
    ));

    // Authentic but not an event: the payload error surfaces, after the signature passed.
    let junk = b"[1,2,3]";
    let sig = key("key").sign(TS_SECS, junk);
    let signed = headers(&[("x-cio-timestamp", TS), ("x-cio-signature", sig.as_bytes())]);
    assert!(matches!(
        verifier().verify_and_parse(&signed, junk, at(TS_SECS)),
        Err(WebhookError::Payload(_))
    ));
}

#[test]
fn signing_key_is_redacted_everywhere() {
    let secret = "super-secret-signing-key-0451";
    let key = key(secret);
    let verifier = SignatureVerifier::new(key.clone());
    let renderings = [
        format!("{key:?}"),
        format!("{key:#?}"),
        format!("{key}"),
        format!("{verifier:?}"),
        format!("{verifier:#?}"),
    ];
    for text in &renderings {
        assert!(!text.contains(secret), "secret leaked in {text:?}");
        assert!(
            !text.contains("0451"),
            "part of the secret leaked in {text:?}"
        );
        assert!(text.contains("redacted"), "no redaction marker in {text:?}");
    }
    assert_eq!(renderings[0], "WebhookSigningKey(<redacted>)");
    assert_eq!(renderings[2], "<redacted>");
}

#[test]
fn errors_do_not_echo_the_signature() {
    let err = check(TS, SIG_OTHER_KEY, BODY, at(TS_SECS));
    let Err(err) = err else {
        panic!("forged request accepted")
    };
    let text = format!("{err} {err:?}");
    assert!(!text.contains(SIG_OTHER_KEY));
    assert!(!text.contains(SIG_KEY));
}

#[test]
fn empty_signing_key_is_refused() {
    assert!(matches!(
        WebhookSigningKey::new(""),
        Err(InvalidSigningKey::Empty)
    ));
    assert!(matches!(
        WebhookSigningKey::new(Vec::new()),
        Err(InvalidSigningKey::Empty)
    ));
    // A one-byte key is fine.
    assert!(WebhookSigningKey::new("k").is_ok());
}
