//! Deterministic event ids: the same source event always gets the same ULID.
//!
//! Customer.io de-duplicates events on their `id`, which must be a ULID. It ignores the time
//! embedded in the ULID, so any unique, well-formed ULID works. Deriving the id from the
//! source's own id (a Segment `messageId`, a queue message key, …) means a replayed or retried
//! event carries the same id as the first delivery, and Customer.io drops the repeat — across
//! processes and restarts, with no shared state.
//!
//! # Derivation
//!
//! So that other implementations can reproduce the ids exactly:
//!
//! 1. `digest = SHA-256(source_id as UTF-8 bytes)` (32 bytes).
//! 2. `random` (80 bits) = `digest[0..10]` read as a big-endian integer.
//! 3. `time` (48 bits):
//!    - [`event_id`]: the event time in **milliseconds** since the Unix epoch, clamped to
//!      `0 ..= 2^48 - 1` (an instant before 1970 becomes 0; one after the year 10889 becomes
//!      `2^48 - 1`);
//!    - [`event_id_from_key`]: `digest[10..16]` read as a big-endian integer.
//! 4. The 128-bit value `time << 80 | random`, written as a ULID: 26 characters of Crockford
//!    base32, most significant first.
//!
//! In Python:
//!
//! ```text
//! import hashlib
//! ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
//! def event_id(source_id: str, timestamp_ms: int) -> str:
//!     digest = hashlib.sha256(source_id.encode()).digest()
//!     time = max(0, min(timestamp_ms, 2**48 - 1))
//!     n = time << 80 | int.from_bytes(digest[:10], "big")
//!     return "".join(ALPHABET[(n >> 5 * (25 - i)) & 31] for i in range(26))
//! ```
//!
//! # Which one to use
//!
//! Both give the same 80-bit random part for the same source id; they differ in the time part.
//!
//! - [`event_id`] puts the event time in the id, as a ULID is meant to have: ids sort by event
//!   time and show it when decoded. Use it when the source gives a timestamp that is **stable
//!   across replays** (the event's own time, not the time it was received).
//! - [`event_id_from_key`] depends on the source id alone. Use it when there is no timestamp,
//!   or when the timestamp may differ between deliveries of the same event (a receive time, a
//!   clock filled in by a retrying client): any change in the time part makes a new id and
//!   defeats de-duplication. Its time part is hash bits, so it says nothing about when the
//!   event happened, and all 128 bits are hash output (fewer chance collisions).
//!
//! Uniqueness rests on the 80 hash bits (for [`event_id`], among events with the same
//! millisecond): a chance collision needs around 2^40 distinct source ids in one millisecond.
//! If two sources could produce the same id string, prefix it with a namespace
//! (`"segment:" + messageId`).
//!
//! ```
//! use customerio_client::event_id::{event_id, event_id_from_key};
//!
//! let id = event_id("msg-1", 1_717_172_000_000);
//! assert_eq!(id.to_string(), "01HZ7PTN80786Y6Y9JX2RSEHQJ");
//! assert_eq!(id, event_id("msg-1", 1_717_172_000_000)); // replays agree
//! assert_eq!(id.timestamp_ms(), 1_717_172_000_000);
//! assert_eq!(event_id_from_key("msg-1").random(), id.random());
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use ulid::Ulid;

/// The largest time part a ULID can hold: `2^48 - 1` milliseconds.
pub const MAX_TIMESTAMP_MS: u64 = (1 << 48) - 1;

/// The 80-bit random part and the following 48 hash bits of `SHA-256(source_id)`.
fn hash_parts(source_id: &str) -> (u128, u64) {
    let digest = Sha256::digest(source_id.as_bytes());
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    let mut time = [0u8; 8];
    time[2..].copy_from_slice(&digest[10..16]);
    (u128::from_be_bytes(random), u64::from_be_bytes(time))
}

/// Clamps milliseconds since the epoch into the 48-bit ULID time range.
fn clamp_ms(timestamp_ms: i64) -> u64 {
    u64::try_from(timestamp_ms)
        .unwrap_or(0)
        .min(MAX_TIMESTAMP_MS)
}

/// The id for the event `source_id` that happened at `timestamp_ms` (milliseconds since the
/// Unix epoch; negative values are before 1970).
///
/// Time part: `timestamp_ms` clamped to `0 ..= 2^48 - 1`. Random part: the first 80 bits of
/// `SHA-256(source_id)`. See the [module docs](self) for the exact derivation.
pub fn event_id(source_id: &str, timestamp_ms: i64) -> Ulid {
    let (random, _) = hash_parts(source_id);
    Ulid::from_parts(clamp_ms(timestamp_ms), random)
}

/// [`event_id`] for a [`SystemTime`]; an instant before 1970 clamps to 0.
pub fn event_id_at(source_id: &str, at: SystemTime) -> Ulid {
    let ms = match at.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    };
    event_id(source_id, ms)
}

/// The id for the event `source_id`, from the source id alone (for sources without a stable
/// timestamp).
///
/// Time part: bits 80..128 of `SHA-256(source_id)`. Random part: the first 80 bits, as in
/// [`event_id`].
pub fn event_id_from_key(source_id: &str) -> Ulid {
    let (random, time) = hash_parts(source_id);
    Ulid::from_parts(time, random)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clamping_at_both_ends() {
        assert_eq!(clamp_ms(-1), 0);
        assert_eq!(clamp_ms(i64::MIN), 0);
        assert_eq!(clamp_ms(0), 0);
        assert_eq!(clamp_ms(MAX_TIMESTAMP_MS as i64), MAX_TIMESTAMP_MS);
        assert_eq!(clamp_ms(MAX_TIMESTAMP_MS as i64 + 1), MAX_TIMESTAMP_MS);
        assert_eq!(clamp_ms(i64::MAX), MAX_TIMESTAMP_MS);
    }

    #[test]
    fn system_time_before_epoch_clamps_to_zero() {
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(event_id_at("k", before).timestamp_ms(), 0);
        let at = UNIX_EPOCH + Duration::from_millis(1_717_172_000_123);
        assert_eq!(event_id_at("k", at), event_id("k", 1_717_172_000_123));
    }
}
