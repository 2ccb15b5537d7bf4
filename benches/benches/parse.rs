//! Parsing benchmarks (filled in by the benchmarks issue).
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};

const SAMPLE: &str = r#"{"type":"track","messageId":"m-1","userId":"u-1","event":"Signed Up","properties":{"plan":"pro"},"timestamp":"2024-05-01T10:16:00.000Z"}"#;

fn floor(c: &mut Criterion) {
    c.bench_function("serde_json value round trip", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_str(std::hint::black_box(SAMPLE)).unwrap();
            serde_json::to_vec(&v).unwrap()
        })
    });
}

criterion_group!(benches, floor);
criterion_main!(benches);
