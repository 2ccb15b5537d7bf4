//! Segment JSON → `Message`, next to the floor: a bare `serde_json` parse to `Value` and
//! serialisation of the same events. The ratio of the two is the cost of the typed model.
#![allow(missing_docs)]

use std::hint::black_box;

use benches::EventGenerator;
use benches::segment_model::Message;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Events per iteration.
const EVENTS: usize = 1_000;

fn parse(c: &mut Criterion) {
    let events: Vec<String> = EventGenerator::new(7).take(EVENTS).collect();
    let bytes: usize = events.iter().map(String::len).sum();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(EVENTS as u64));

    group.bench_function("floor: serde_json Value parse + serialise", |b| {
        b.iter(|| {
            for text in &events {
                let value: serde_json::Value =
                    serde_json::from_str(black_box(text)).expect("generated JSON parses");
                black_box(serde_json::to_vec(&value).expect("a Value serialises"));
            }
        })
    });
    group.bench_function("Message parse + serialise", |b| {
        b.iter(|| {
            for text in &events {
                let message = Message::from_str(black_box(text)).expect("generated events parse");
                black_box(serde_json::to_vec(&message).expect("a Message serialises"));
            }
        })
    });
    group.bench_function("Message parse", |b| {
        b.iter(|| {
            for text in &events {
                black_box(Message::from_str(black_box(text)).expect("generated events parse"));
            }
        })
    });
    group.bench_function("Message parse + validate", |b| {
        b.iter(|| {
            for text in &events {
                let message = Message::from_str(black_box(text)).expect("generated events parse");
                black_box(message.validate().is_ok());
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("parse bytes");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("Message parse", |b| {
        b.iter(|| {
            for text in &events {
                black_box(Message::from_str(black_box(text)).expect("generated events parse"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
