//! Timestamp parsing: every notation SDKs send, exact text kept, typed errors otherwise.

use segment_model::{Error, Message, Timestamp};
use serde_json::json;

#[test]
fn accepts_the_notations_seen_in_real_traffic() {
    let cases = [
        ("2024-05-01T10:15:30.123Z", "2024-05-01T10:15:30.123Z"),
        ("2024-05-01T10:15:30Z", "2024-05-01T10:15:30Z"),
        ("2024-05-01T10:15:30.1Z", "2024-05-01T10:15:30.1Z"),
        (
            "2024-05-01T10:15:30.123456789Z",
            "2024-05-01T10:15:30.123456789Z",
        ),
        ("2024-05-01T10:15:30.123+00:00", "2024-05-01T10:15:30.123Z"),
        (
            "2024-05-01T10:15:30.123456+00:00",
            "2024-05-01T10:15:30.123456Z",
        ),
        ("2024-05-01T12:15:30.123+02:00", "2024-05-01T10:15:30.123Z"),
        ("2024-05-01T12:15:30.123+0200", "2024-05-01T10:15:30.123Z"),
        ("2024-05-01T10:15:30.123+0000", "2024-05-01T10:15:30.123Z"),
        (
            "2024-05-01T03:15:30.123456789-07:00",
            "2024-05-01T10:15:30.123456789Z",
        ),
        ("2020-12-07T19:33:44+00:00", "2020-12-07T19:33:44Z"),
        ("2017-11-30T06:05:01.40468Z", "2017-11-30T06:05:01.40468Z"),
        ("2024-05-01", "2024-05-01T00:00:00Z"),
        ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.5Z"),
    ];
    for (text, instant) in cases {
        let ts = Timestamp::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        assert_eq!(ts.as_str(), text);
        assert_eq!(ts.instant().to_string(), instant, "{text}");
        assert_eq!(ts.to_string(), text);
        assert_eq!(serde_json::to_value(&ts).expect("serialises"), json!(text));
    }
}

#[test]
fn rejects_what_is_not_an_instant() {
    for text in [
        "",
        "yesterday",
        "2024-05-01T10:15:30",             // no offset: the instant is unknown
        "2015-2-02T00:30:08.276Z",         // unpadded month
        "2024-02-30T00:00:00Z",            // no such day
        "2024-05-01T10:15:30.1234567891Z", // ten fractional digits
        "20240501",                        // compact date: more likely a number
        "1714558530",
    ] {
        assert!(
            matches!(Timestamp::parse(text), Err(Error::InvalidTimestamp { .. })),
            "{text:?} should be rejected"
        );
    }
}

#[test]
fn unix_seconds_round_towards_negative_infinity() {
    let ts = Timestamp::parse("2024-05-01T10:15:30.999Z").expect("valid");
    assert_eq!(ts.as_unix_seconds(), 1_714_558_530);
    assert_eq!(ts.as_unix_millis(), 1_714_558_530_999);
    let before_epoch = Timestamp::parse("1969-12-31T23:59:59.5Z").expect("valid");
    assert_eq!(before_epoch.as_unix_seconds(), -1);
    assert_eq!(before_epoch.as_unix_millis(), -500);
    let sub_ms_before_epoch = Timestamp::parse("1969-12-31T23:59:59.9995Z").expect("valid");
    assert_eq!(sub_ms_before_epoch.as_unix_millis(), -1);
}

#[test]
fn from_instant_writes_milliseconds_and_z() {
    let instant: jiff::Timestamp = "2024-05-01T10:15:30.123456789Z".parse().expect("valid");
    let ts = Timestamp::from_instant(instant);
    assert_eq!(ts.as_str(), "2024-05-01T10:15:30.123Z");
    // The instant matches the text exactly (truncated, not rounded).
    assert_eq!(
        ts.instant(),
        "2024-05-01T10:15:30.123Z"
            .parse::<jiff::Timestamp>()
            .expect("valid")
    );
    let whole: jiff::Timestamp = "2024-05-01T10:15:30Z".parse().expect("valid");
    assert_eq!(Timestamp::from(whole).as_str(), "2024-05-01T10:15:30.000Z");
    let negative: jiff::Timestamp = "1969-12-31T23:59:59.9995Z".parse().expect("valid");
    assert_eq!(
        Timestamp::from_instant(negative).as_str(),
        "1969-12-31T23:59:59.999Z"
    );
}

#[test]
fn canonical_string_normalises_notation() {
    let ts = Timestamp::parse("2024-05-01T03:15:30.123456789-07:00").expect("valid");
    assert_eq!(ts.to_canonical_string(), "2024-05-01T10:15:30.123Z");
    assert_eq!(
        Timestamp::parse("2024-05-01")
            .expect("valid")
            .to_canonical_string(),
        "2024-05-01T00:00:00.000Z"
    );
}

#[test]
fn equality_is_textual_chronology_is_by_instant() {
    let a = Timestamp::parse("2024-05-01T10:15:30Z").expect("valid");
    let b = Timestamp::parse("2024-05-01T12:15:30+02:00").expect("valid");
    assert_ne!(a, b);
    assert_eq!(a.instant(), b.instant());
}

#[test]
fn now_is_millisecond_precision() {
    let now = Timestamp::now();
    assert_eq!(now.instant().subsec_nanosecond() % 1_000_000, 0);
    assert_eq!(
        Timestamp::parse(now.as_str()).expect("valid").instant(),
        now.instant()
    );
}

#[test]
fn message_timestamps_are_typed_and_kept_verbatim() {
    let message = Message::from_value(json!({
        "type": "track", "userId": "u", "event": "E",
        "timestamp": "2024-05-01T03:15:30.5-07:00",
        "sentAt": "2024-05-01"
    }))
    .expect("decodes");
    let common = message.common();
    assert_eq!(
        common.timestamp.as_ref().map(|t| t.instant().to_string()),
        Some("2024-05-01T10:15:30.5Z".to_owned())
    );
    assert_eq!(
        common.sent_at.as_ref().map(Timestamp::as_unix_seconds),
        Some(1_714_521_600)
    );
    let out = serde_json::to_value(&message).expect("serialises");
    assert_eq!(out["timestamp"], "2024-05-01T03:15:30.5-07:00");
    assert_eq!(out["sentAt"], "2024-05-01");
}

#[test]
fn serde_deserialize_rejects_non_timestamps() {
    assert!(serde_json::from_str::<Timestamp>("\"2024-05-01T10:15:30Z\"").is_ok());
    assert!(serde_json::from_str::<Timestamp>("\"nope\"").is_err());
    assert!(serde_json::from_str::<Timestamp>("17").is_err());
}
