//! Segment message: parse, validate, map to Customer.io operations.
//!
//! Properties beyond "no panic": a parsed message serialises, the serialisation parses back to
//! the same JSON (one round trip is a fixed point), and mapping never panics whatever the
//! target.
#![no_main]

use cio_segment_sync::customerio_client::Identifier;
use cio_segment_sync::identity::Target;
use cio_segment_sync::mapping::{MappingConfig, map};
use libfuzzer_sys::fuzz_target;
use segment_model::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::from_slice(data) else {
        return;
    };
    let _ = message.validate();
    let value = serde_json::to_value(&message).expect("a parsed message serialises");
    let again = Message::from_value(value.clone()).expect("a serialised message parses");
    assert_eq!(
        serde_json::to_value(&again).expect("a parsed message serialises"),
        value,
        "the round trip is not a fixed point"
    );

    let config = MappingConfig::default();
    let user = message.user_id().map(|id| id.to_string());
    let anonymous = message.anonymous_id().map(|id| id.to_string());
    let mut targets = vec![];
    if let Some(user) = &user {
        targets.push(Target::Person {
            identifier: Identifier::id(user.clone()),
            anonymous_id: anonymous.clone(),
        });
        targets.push(Target::Merge {
            primary: Identifier::id(user.clone()),
            secondary: Identifier::email("secondary@example.com"),
        });
    }
    if let Some(anonymous) = anonymous {
        targets.push(Target::Anonymous {
            anonymous_id: anonymous,
        });
    }
    for target in &targets {
        if let Ok(cio_segment_sync::mapping::Mapped::Operations(ops)) =
            map(&message, target, &config)
        {
            for op in ops {
                let _ = serde_json::to_vec(&op).expect("an operation serialises");
            }
        }
    }
});
