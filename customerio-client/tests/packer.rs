//! The batch packer at its exact byte and count boundaries, plus a property test over random
//! operation sizes.

use customerio_client::Identifier;
use customerio_client::track::packer::{
    BATCH_WRAPPER_BYTES, BatchPacker, PackedBatch, PackerLimits, RejectReason, pack,
};
use customerio_client::track::v2::{Operation, PersonEvent};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Size of the event below with an empty padding value.
fn base_size() -> usize {
    serde_json::to_vec(&event_padded(0)).unwrap().len()
}

fn event_padded(pad: usize) -> Operation {
    PersonEvent::new(Identifier::id("u"), "e")
        .unwrap()
        .with_attribute("p", "x".repeat(pad))
        .unwrap()
        .into()
}

/// An operation whose serialised form is exactly `size` bytes.
fn op_of_size(size: usize) -> Operation {
    let op = event_padded(size - base_size());
    assert_eq!(serde_json::to_vec(&op).unwrap().len(), size);
    op
}

fn body_json(batch: &PackedBatch<usize>) -> Value {
    serde_json::from_slice(batch.body()).expect("the body is valid JSON")
}

#[test]
fn wrapper_is_twelve_bytes() {
    assert_eq!(BATCH_WRAPPER_BYTES, br#"{"batch":["#.len() + b"]}".len());
    assert_eq!(BATCH_WRAPPER_BYTES, 12);
}

#[test]
fn an_operation_of_exactly_32000_bytes_fits_and_32001_is_handed_back() {
    let mut packer = BatchPacker::new(PackerLimits::default());
    assert!(packer.push(op_of_size(32_000), 0).unwrap().is_none());
    assert_eq!(packer.pending_bytes(), 12 + 32_000);

    let too_big = op_of_size(32_001);
    let rejected = packer.push(too_big.clone(), 1).unwrap_err();
    assert_eq!(rejected.tag, 1);
    assert_eq!(
        rejected.operation, too_big,
        "the operation comes back intact"
    );
    assert!(matches!(
        rejected.reason,
        RejectReason::TooLarge {
            size: 32_001,
            limit: 32_000
        }
    ));
    // Display says what happened once; the reason is the source.
    assert_eq!(rejected.to_string(), "the packer handed the operation back");
    assert_eq!(
        std::error::Error::source(&rejected).map(ToString::to_string),
        Some("operation is 32001 bytes; the limit is 32000".to_owned())
    );
    // The open batch is untouched.
    assert_eq!(packer.len(), 1);
    let batch = packer.flush().unwrap();
    assert_eq!(batch.into_tags(), vec![0]);
    assert!(packer.flush().is_none());
}

/// 15 operations of 32 000 bytes, then one of `last` bytes:
/// body = 12 + 15 × 32 000 + `last` + 15 commas.
fn fill_to(last: usize) -> Vec<Operation> {
    let mut ops: Vec<Operation> = (0..15).map(|_| op_of_size(32_000)).collect();
    ops.push(op_of_size(last));
    ops
}

#[test]
fn a_request_of_exactly_500000_bytes_is_one_batch() {
    let last = 500_000 - 12 - 15 * 32_000 - 15;
    assert_eq!(last, 19_973);
    let (batches, rejected) = pack(fill_to(last), None);
    assert!(rejected.is_empty());
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].body().len(), 500_000);
    assert_eq!(batches[0].len(), 16);
}

#[test]
fn a_request_that_would_be_500001_bytes_splits() {
    let (batches, rejected) = pack(fill_to(19_974), None);
    assert!(rejected.is_empty());
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].len(), 15);
    assert_eq!(batches[0].body().len(), 12 + 15 * 32_000 + 14);
    assert_eq!(batches[1].len(), 1);
    assert_eq!(batches[1].body().len(), 12 + 19_974);
    assert_eq!(batches[1].items()[0].tag(), &15);
}

#[test]
fn push_returns_the_full_batch_when_the_next_operation_does_not_fit() {
    let mut packer = BatchPacker::new(PackerLimits::default());
    for (tag, op) in fill_to(19_973).into_iter().enumerate() {
        assert!(packer.push(op, tag).unwrap().is_none(), "tag {tag}");
    }
    assert_eq!(packer.pending_bytes(), 500_000);
    // Even the smallest operation overflows now: the full batch comes out, the new one stays.
    let full = packer.push(op_of_size(base_size()), 16).unwrap().unwrap();
    assert_eq!(full.body().len(), 500_000);
    assert_eq!(full.len(), 16);
    assert_eq!(packer.len(), 1);
    assert_eq!(packer.pending_bytes(), 12 + base_size());
    assert_eq!(packer.flush().unwrap().into_tags(), vec![16]);
}

#[test]
fn count_cap_closes_batches() {
    let ops: Vec<Operation> = (0..7).map(|n| op_of_size(100 + n)).collect();
    let (batches, rejected) = pack(ops, Some(3));
    assert!(rejected.is_empty());
    let tags: Vec<Vec<usize>> = batches.into_iter().map(PackedBatch::into_tags).collect();
    assert_eq!(tags, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);

    // A cap of one: every push returns its own batch.
    let mut packer = BatchPacker::new(PackerLimits::default().with_max_operations(1));
    for tag in 0..3 {
        let batch = packer.push(op_of_size(200), tag).unwrap().unwrap();
        assert_eq!(batch.into_tags(), vec![tag]);
    }
    assert!(packer.flush().is_none());
}

#[test]
fn the_body_is_the_batch_envelope_of_the_operations_in_order() {
    let ops: Vec<Operation> = vec![
        op_of_size(300),
        Operation::delete_person(Identifier::email("ada@example.com")).unwrap(),
        op_of_size(150),
    ];
    let (batches, _) = pack(ops.clone(), None);
    assert_eq!(batches.len(), 1);
    assert_eq!(body_json(&batches[0]), json!({"batch": ops}));
    // Each item's bytes are its own operation, and decode back to it.
    for (item, op) in batches[0].items().iter().zip(&ops) {
        assert_eq!(&item.bytes()[..], &serde_json::to_vec(op).unwrap()[..]);
        assert_eq!(&item.decode().unwrap(), op);
    }
}

#[test]
fn lowered_limits_are_respected_and_clamped() {
    let limits = PackerLimits::default()
        .with_max_request_bytes(1_000)
        .with_max_operation_bytes(10_000_000);
    assert_eq!(limits.max_request_bytes(), 1_000);
    // The operation limit cannot exceed what a request of 1 000 bytes can hold.
    assert_eq!(limits.max_operation_bytes(), 1_000 - 12);
    let limits = PackerLimits::default().with_max_request_bytes(10_000_000);
    assert_eq!(limits.max_request_bytes(), 500_000);
    assert_eq!(limits.max_operation_bytes(), 32_000);
    assert_eq!(
        PackerLimits::default()
            .with_max_operations(0)
            .max_operations(),
        Some(1)
    );

    let mut packer = BatchPacker::new(PackerLimits::default().with_max_request_bytes(1_000));
    let rejected = packer.push(op_of_size(989), 0).unwrap_err();
    assert!(matches!(
        rejected.reason,
        RejectReason::TooLarge {
            size: 989,
            limit: 988
        }
    ));
    assert!(packer.push(op_of_size(988), 1).unwrap().is_none());
    assert_eq!(packer.pending_bytes(), 1_000);
}

#[test]
fn pack_hands_back_every_oversized_operation_in_order() {
    let ops = vec![
        op_of_size(200),
        op_of_size(40_000),
        op_of_size(300),
        op_of_size(32_001),
    ];
    let (batches, rejected) = pack(ops, None);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].tags().copied().collect::<Vec<_>>(), vec![0, 2]);
    assert_eq!(
        rejected.iter().map(|r| r.tag).collect::<Vec<_>>(),
        vec![1, 3]
    );
}

#[test]
fn debug_output_does_not_show_operation_contents() {
    let op: Operation = PersonEvent::new(Identifier::email("ada@example.com"), "e")
        .unwrap()
        .into();
    let (batches, _) = pack(vec![op], None);
    let shown = format!("{:?}", batches[0]);
    assert!(!shown.contains("ada@"), "{shown}");
    let mut packer = BatchPacker::new(PackerLimits::default());
    let _ = packer.push(op_of_size(100), 0usize);
    assert!(!format!("{packer:?}").contains("xxx"));
}

// ---------------------------------------------------------------------------------------------
// Property: for random sizes and limits, every operation ends in exactly one batch or
// rejection, no batch breaks a limit, order is kept, and batches are as full as allowed.

fn check_packing(sizes: &[usize], cap: Option<usize>, request_limit: usize) {
    let mut limits = PackerLimits::default().with_max_request_bytes(request_limit);
    if let Some(cap) = cap {
        limits = limits.with_max_operations(cap);
    }
    let max_op = limits.max_operation_bytes();
    let ops: Vec<Operation> = sizes.iter().map(|&s| op_of_size(s)).collect();
    let mut packer = BatchPacker::new(limits);
    let (batches, rejected) = packer.pack(ops.iter().cloned().zip(0..));

    // Exactly the oversized ones are handed back, intact and in order.
    let expected_rejected: Vec<usize> = (0..sizes.len()).filter(|&i| sizes[i] > max_op).collect();
    assert_eq!(
        rejected.iter().map(|r| r.tag).collect::<Vec<_>>(),
        expected_rejected
    );
    for r in &rejected {
        assert_eq!(r.operation, ops[r.tag]);
    }

    // Every other one is in exactly one batch, in input order.
    let packed: Vec<usize> = batches.iter().flat_map(|b| b.tags().copied()).collect();
    let expected_packed: Vec<usize> = (0..sizes.len()).filter(|&i| sizes[i] <= max_op).collect();
    assert_eq!(packed, expected_packed);

    for (n, batch) in batches.iter().enumerate() {
        assert!(!batch.is_empty());
        let body_len = BATCH_WRAPPER_BYTES
            + batch.tags().map(|&i| sizes[i]).sum::<usize>()
            + (batch.len() - 1);
        assert_eq!(batch.body().len(), body_len);
        assert!(body_len <= limits.max_request_bytes());
        if let Some(cap) = cap {
            assert!(batch.len() <= cap);
        }
        let ops_in_batch: Vec<&Operation> = batch.tags().map(|&i| &ops[i]).collect();
        assert_eq!(body_json(batch), json!({ "batch": ops_in_batch }));
        // Greedy: the next packed operation did not fit, or the cap was reached.
        if let Some(next) = batches.get(n + 1) {
            let next_size = sizes[next.items()[0].tag().to_owned()];
            let full_by_count = cap.is_some_and(|cap| batch.len() == cap);
            assert!(
                full_by_count || body_len + 1 + next_size > limits.max_request_bytes(),
                "batch {n} closed early"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_operation_is_placed_exactly_once_within_limits(
        sizes in prop::collection::vec(60usize..34_000, 0..40),
        cap in prop::option::of(1usize..8),
        request_limit in 100usize..520_000,
    ) {
        let sizes: Vec<usize> = sizes.into_iter().map(|s| s.max(base_size())).collect();
        check_packing(&sizes, cap, request_limit);
    }

    #[test]
    fn small_operations_fill_large_requests(
        sizes in prop::collection::vec(60usize..2_000, 0..300),
        cap in prop::option::of(1usize..120),
    ) {
        let sizes: Vec<usize> = sizes.into_iter().map(|s| s.max(base_size())).collect();
        check_packing(&sizes, cap, 40_000);
    }
}

#[test]
fn refused_items_are_repacked_from_their_bytes() {
    let ops: Vec<Operation> = (0..6).map(|n| op_of_size(200 + n)).collect();
    let (mut batches, _) = pack(ops.clone(), None);
    let batch = batches.pop().unwrap();
    let original: Vec<bytes::Bytes> = batch.items().iter().map(|i| i.bytes().clone()).collect();

    // Bisect: the first half into one request, the second half into another.
    let mut items = batch.into_items();
    let second = items.split_off(3);
    let mut halves = Vec::new();
    for half in [items, second] {
        let mut packer = BatchPacker::new(PackerLimits::default());
        for item in half {
            assert!(packer.push_item(item).unwrap().is_none());
        }
        halves.push(packer.flush().unwrap());
    }
    assert_eq!(halves[0].tags().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(halves[1].tags().copied().collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!(body_json(&halves[0]), json!({"batch": &ops[..3]}));
    assert_eq!(body_json(&halves[1]), json!({"batch": &ops[3..]}));
    // The halves carry the very bytes the first packer produced.
    let repacked: Vec<bytes::Bytes> = halves
        .iter()
        .flat_map(|b| b.items().iter().map(|i| i.bytes().clone()))
        .collect();
    assert_eq!(repacked, original);

    // An item over a smaller packer's limit comes back with its bytes.
    let (mut batches, _) = pack(vec![op_of_size(500)], None);
    let item = batches.pop().unwrap().into_items().pop().unwrap();
    let mut small = BatchPacker::new(PackerLimits::default().with_max_operation_bytes(499));
    let back = small.push_item(item).unwrap_err();
    assert_eq!(back.tag(), &0);
    assert_eq!(back.bytes().len(), 500);
    assert!(small.is_empty());
}

#[test]
fn encoded_operations_are_assembled_as_they_are_and_limits_are_checked() {
    use bytes::Bytes;
    use customerio_client::limits::{MAX_BATCH_REQUEST_BYTES, MAX_OPERATION_BYTES};
    use customerio_client::track::packer::PackedBatch;

    let a = Bytes::from_static(br#"{"type":"person","action":"delete","identifiers":{"id":"a"}}"#);
    let b = Bytes::from_static(br#"{"type":"person","action":"delete","identifiers":{"id":"b"}}"#);
    let batch = PackedBatch::from_encoded(vec![(0, a.clone()), (1, b.clone())]).unwrap();
    let expected = format!(
        r#"{{"batch":[{},{}]}}"#,
        std::str::from_utf8(&a).unwrap(),
        std::str::from_utf8(&b).unwrap()
    );
    assert_eq!(batch.body().as_ref(), expected.as_bytes());
    assert_eq!(batch.tags().copied().collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(batch.items()[1].bytes(), &b);

    let big = Bytes::from(vec![b' '; MAX_OPERATION_BYTES + 1]);
    let error = PackedBatch::from_encoded(vec![((), a.clone()), ((), big)]).unwrap_err();
    assert!(error.to_string().contains("operation 1"), "{error}");

    let op = Bytes::from(vec![b' '; MAX_OPERATION_BYTES]);
    let count = MAX_BATCH_REQUEST_BYTES / MAX_OPERATION_BYTES + 1;
    let error = PackedBatch::from_encoded(vec![((), op); count]).unwrap_err();
    assert!(error.to_string().contains("over the"), "{error}");
}
