//! The `messageId` of a back-synced event, derived from the Customer.io `event_id`.

/// The namespace of the UUID v5 `messageId`s derived from Customer.io `event_id`s. Fixed
/// forever: changing it would make Segment accept a retried webhook's event a second time.
pub const MESSAGE_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c1d_2a8e_93f4_5b07_8e2c_4d9a_b1f3_e570);

/// The `messageId` of the Segment event made from the webhook event `event_id`: the
/// hyphenated UUID v5 of its bytes under [`MESSAGE_ID_NAMESPACE`].
///
/// A webhook that Customer.io sends again carries the same `event_id`, so it becomes the same
/// Segment message, which Segment de-duplicates.
///
/// ```
/// use cio_segment_sync::mapping::to_segment::message_id_for;
///
/// let id = message_id_for("01E4C4CT6YDC7Y5M7FE1GWWPQJ");
/// assert_eq!(id, message_id_for("01E4C4CT6YDC7Y5M7FE1GWWPQJ"));
/// assert_eq!(id.len(), 36);
/// ```
pub fn message_id_for(event_id: &str) -> String {
    uuid::Uuid::new_v5(&MESSAGE_ID_NAMESPACE, event_id.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_and_distinct_per_event() {
        assert_eq!(message_id_for("a"), message_id_for("a"));
        assert_ne!(message_id_for("a"), message_id_for("b"));
        assert_eq!(
            message_id_for("01E4C4CT6YDC7Y5M7FE1GWWPQJ"),
            uuid::Uuid::new_v5(&MESSAGE_ID_NAMESPACE, b"01E4C4CT6YDC7Y5M7FE1GWWPQJ").to_string()
        );
    }

    #[test]
    fn message_id_is_pinned() {
        // A known answer (also what Python's `uuid.uuid5` gives for this namespace and name):
        // if it changes, retried webhooks stop de-duplicating in Segment.
        assert_eq!(
            message_id_for("01E4C4CT6YDC7Y5M7FE1GWWPQJ"),
            "634cfe7c-d3f9-54d4-906c-333d5c8d731a"
        );
    }
}
