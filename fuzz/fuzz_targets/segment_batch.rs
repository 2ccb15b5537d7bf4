//! Segment batch envelope (`{"batch": [...], ...}`), strict and lenient.
//!
//! Properties: strict success implies lenient success with no item errors and the same
//! messages; a parsed envelope serialises and parses back to the same JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use segment_model::Batch;

fuzz_target!(|data: &[u8]| {
    let strict = Batch::from_slice(data);
    let lenient = Batch::from_slice_lenient(data);
    if let Ok(batch) = &strict {
        let lenient = lenient
            .as_ref()
            .expect("what parses strictly parses leniently");
        assert!(
            lenient.is_complete(),
            "a strict parse had item errors leniently"
        );
        assert_eq!(&lenient.batch, batch);
        let value = serde_json::to_value(batch).expect("a parsed batch serialises");
        let bytes = serde_json::to_vec(&value).expect("a JSON value serialises");
        let again = Batch::from_slice(&bytes).expect("a serialised batch parses");
        assert_eq!(
            serde_json::to_value(&again).expect("a parsed batch serialises"),
            value,
            "the round trip is not a fixed point"
        );
    }
    if let Ok(lenient) = lenient {
        let _ = serde_json::to_vec(&lenient.batch).expect("a parsed batch serialises");
    }
});
