//! Deterministic event ids: known answers computed independently, replays, uniqueness, and
//! clamping at the edges of the 48-bit time range.

use std::collections::HashSet;

use customerio_client::event_id::{MAX_TIMESTAMP_MS, event_id, event_id_from_key};
use ulid::Ulid;

// Known answers, computed with Python's hashlib (not with this crate):
//
// python3 -c "
// import hashlib
// A='0123456789ABCDEFGHJKMNPQRSTVWXYZ'
// def enc(n): return ''.join(A[(n>>(5*(25-i)))&31] for i in range(26))
// def eid(src, ms):
//     d=hashlib.sha256(src.encode()).digest()
//     return enc((max(0,min(ms,(1<<48)-1))<<80)|int.from_bytes(d[:10],'big'))
// def kid(src):
//     d=hashlib.sha256(src.encode()).digest()
//     return enc((int.from_bytes(d[10:16],'big')<<80)|int.from_bytes(d[:10],'big'))
// print(eid('msg-1',1717172000000), kid('msg-1'), eid('',0),
//       eid('ajs-next-9f1c2e',1717172410123), eid('msg-1',-5), eid('msg-1',1<<60))
// print(hashlib.sha256(b'msg-1').hexdigest())
// "
// 01HZ7PTN80786Y6Y9JX2RSEHQJ 0B490MZ1HF786Y6Y9JX2RSEHQJ 0000000000WERC8GMRZGE196QV
// 01HZ7Q75RBTRH4HTBN110XMMHD 0000000000786Y6Y9JX2RSEHQJ 7ZZZZZZZZZ786Y6Y9JX2RSEHQJ
// 3a0de37932e8b19746f20b22414f862fd4c5a13960261ff982409854500159f6

#[test]
fn known_answers() {
    assert_eq!(
        event_id("msg-1", 1_717_172_000_000).to_string(),
        "01HZ7PTN80786Y6Y9JX2RSEHQJ"
    );
    assert_eq!(
        event_id("ajs-next-9f1c2e", 1_717_172_410_123).to_string(),
        "01HZ7Q75RBTRH4HTBN110XMMHD"
    );
    assert_eq!(event_id("", 0).to_string(), "0000000000WERC8GMRZGE196QV");
    assert_eq!(
        event_id_from_key("msg-1").to_string(),
        "0B490MZ1HF786Y6Y9JX2RSEHQJ"
    );
    // The random part is the first 80 bits of the digest 3a0de37932e8b19746f2….
    assert_eq!(
        event_id("msg-1", 0).random(),
        0x3a0d_e379_32e8_b197_46f2_u128
    );
    // And the key-only time part is the next 48 bits, 0b22414f862f.
    assert_eq!(event_id_from_key("msg-1").timestamp_ms(), 0x0b22_414f_862f);
}

#[test]
fn replays_agree_and_the_time_part_is_the_event_time() {
    let first = event_id("segment:4f1c", 1_717_172_000_123);
    let again = event_id("segment:4f1c", 1_717_172_000_123);
    assert_eq!(first, again);
    assert_eq!(first.timestamp_ms(), 1_717_172_000_123);
    assert_eq!(event_id_from_key("k"), event_id_from_key("k"));
    // A different time with the same source id changes only the time part.
    let later = event_id("segment:4f1c", 1_717_172_000_124);
    assert_ne!(first, later);
    assert_eq!(first.random(), later.random());
}

#[test]
fn ids_are_well_formed_ulids() {
    for id in [
        event_id("x", 1_717_172_000_000),
        event_id_from_key("x"),
        event_id("x", i64::MAX),
    ] {
        let text = id.to_string();
        assert_eq!(text.len(), 26);
        assert!(
            text.chars()
                .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"ILOU".contains(c))),
            "{text}"
        );
        assert_eq!(Ulid::from_string(&text).unwrap(), id);
    }
}

#[test]
fn timestamps_outside_the_48_bit_range_are_clamped() {
    assert_eq!(
        event_id("msg-1", -5).to_string(),
        "0000000000786Y6Y9JX2RSEHQJ"
    );
    assert_eq!(event_id("msg-1", i64::MIN).timestamp_ms(), 0);
    assert_eq!(
        event_id("msg-1", 1 << 60).to_string(),
        "7ZZZZZZZZZ786Y6Y9JX2RSEHQJ"
    );
    assert_eq!(event_id("msg-1", i64::MAX).timestamp_ms(), MAX_TIMESTAMP_MS);
    let edge = i64::try_from(MAX_TIMESTAMP_MS).unwrap();
    assert_eq!(event_id("msg-1", edge).timestamp_ms(), MAX_TIMESTAMP_MS);
    assert_eq!(
        event_id("msg-1", edge - 1).timestamp_ms(),
        MAX_TIMESTAMP_MS - 1
    );
    // Clamping keeps the random part.
    assert_eq!(
        event_id("msg-1", -5).random(),
        event_id("msg-1", 0).random()
    );
}

/// SplitMix64: a fixed, seeded sequence of source ids.
fn seeded_source_ids(seed: u64, count: usize) -> Vec<String> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            format!("{:016x}", z ^ (z >> 31))
        })
        .collect()
}

#[test]
fn different_source_ids_give_different_ids() {
    let sources = seeded_source_ids(0x5eed, 100_000);
    assert_eq!(
        sources.iter().collect::<HashSet<_>>().len(),
        100_000,
        "the sources are distinct"
    );
    // Same timestamp for all: only the hash part can tell them apart.
    let timed: HashSet<Ulid> = sources
        .iter()
        .map(|s| event_id(s, 1_717_172_000_000))
        .collect();
    assert_eq!(timed.len(), 100_000);
    let keyed: HashSet<Ulid> = sources.iter().map(|s| event_id_from_key(s)).collect();
    assert_eq!(keyed.len(), 100_000);
    // Near-identical keys (sequential message ids) too.
    let sequential: HashSet<u128> = (0..100_000)
        .map(|n| event_id(&format!("msg-{n}"), 0).random())
        .collect();
    assert_eq!(sequential.len(), 100_000);
}
