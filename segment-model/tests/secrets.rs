//! The write key never shows in `Debug` or `Display` output, wherever it is held.

use segment_model::{Batch, Message, WriteKey};
use serde_json::json;

const SECRET: &str = "wk_live_9f8e7d6c5b4a39281706";

#[test]
fn write_key_is_redacted_everywhere_but_on_the_wire() {
    let key = WriteKey::new(SECRET);
    assert!(!format!("{key:?}").contains(SECRET));
    assert!(!format!("{key}").contains(SECRET));
    assert!(!format!("{key:#?}").contains(SECRET));

    let message = Message::from_value(json!({
        "type": "track", "userId": "u", "event": "E", "writeKey": SECRET
    }))
    .expect("decodes");
    assert!(!format!("{message:?}").contains(SECRET));
    assert!(!format!("{:?}", message.common()).contains(SECRET));
    assert_eq!(
        message.common().write_key.as_ref().map(WriteKey::expose),
        Some(SECRET)
    );
    // The wire form needs the real key.
    assert_eq!(
        serde_json::to_value(&message).expect("serialises")["writeKey"],
        SECRET
    );

    let batch = Batch::from_value(json!({"batch": [], "writeKey": SECRET})).expect("decodes");
    assert!(!format!("{batch:?}").contains(SECRET));
    assert_eq!(
        serde_json::to_value(&batch).expect("serialises")["writeKey"],
        SECRET
    );

    let builder = Message::track("E")
        .user_id("u")
        .common(message.common().clone());
    assert!(!format!("{builder:?}").contains(SECRET));
}
