//! The CPU-bound steps after parsing: mapping to Customer.io v2 operations, packing them into
//! batch requests, and in-memory de-duplication (claim + commit).
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use benches::EventGenerator;
use benches::segment_model::Message;
use cio_segment_sync::customerio_client::Identifier;
use cio_segment_sync::customerio_client::track::packer::{BatchPacker, PackerLimits};
use cio_segment_sync::customerio_client::track::v2::Operation;
use cio_segment_sync::dedupe::{Claim, Deduper, MemoryDeduper, MemoryDeduperConfig};
use cio_segment_sync::identity::Target;
use cio_segment_sync::mapping::{Mapped, MappingConfig, map};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// Events per iteration.
const EVENTS: usize = 1_000;

/// The generated events (alias left out: it needs a merge target) with the person target
/// the default resolver gives a known user.
fn mappable() -> Vec<(Message, Target)> {
    EventGenerator::new(11)
        .take(EVENTS * 2)
        .map(|text| Message::from_str(&text).expect("generated events parse"))
        .filter(|m| !matches!(m, Message::Alias(_)))
        .take(EVENTS)
        .map(|m| {
            let user = m
                .user_id()
                .expect("generated events carry a userId")
                .to_string();
            let target = Target::Person {
                identifier: Identifier::id(user),
                anonymous_id: None,
            };
            (m, target)
        })
        .collect()
}

fn operations(events: &[(Message, Target)], config: &MappingConfig) -> Vec<Operation> {
    events
        .iter()
        .filter_map(|(m, t)| match map(m, t, config) {
            Ok(Mapped::Operations(ops)) => Some(ops),
            _ => None,
        })
        .flatten()
        .collect()
}

fn mapping(c: &mut Criterion) {
    let events = mappable();
    let config = MappingConfig::default();
    let mut group = c.benchmark_group("map");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("mapping::map to v2 operations", |b| {
        b.iter(|| {
            for (message, target) in &events {
                black_box(map(black_box(message), target, &config).expect("maps"));
            }
        })
    });
    group.finish();
}

fn packing(c: &mut Criterion) {
    let ops = operations(&mappable(), &MappingConfig::default());
    let mut group = c.benchmark_group("pack");
    group.throughput(Throughput::Elements(ops.len() as u64));
    for cap in [100, 1_000] {
        group.bench_function(format!("BatchPacker, {cap} operations per batch"), |b| {
            b.iter_batched(
                || ops.clone(),
                |ops| {
                    let mut packer =
                        BatchPacker::new(PackerLimits::default().with_max_operations(cap));
                    let mut batches = 0;
                    for (index, op) in ops.into_iter().enumerate() {
                        if let Ok(Some(batch)) = packer.push(op, index) {
                            batches += 1;
                            black_box(batch);
                        }
                    }
                    black_box((batches, packer.flush()))
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn dedupe(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds");
    let keys: Vec<String> = (0..EVENTS).map(|i| format!("bench-{i:012}")).collect();
    let lease = Duration::from_secs(60);
    let mut group = c.benchmark_group("dedupe");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("MemoryDeduper claim + commit, new keys", |b| {
        b.iter_batched(
            MemoryDeduper::default,
            |deduper| {
                runtime.block_on(async {
                    for key in &keys {
                        if let Ok(Claim::First(token)) = deduper.claim(key, lease).await {
                            black_box(deduper.commit(key, &token).await.is_ok());
                        }
                    }
                });
                deduper
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("MemoryDeduper claim, keys already done", |b| {
        let deduper = MemoryDeduper::default();
        runtime.block_on(async {
            for key in &keys {
                if let Ok(Claim::First(token)) = deduper.claim(key, lease).await {
                    let _ = deduper.commit(key, &token).await;
                }
            }
        });
        b.iter(|| {
            runtime.block_on(async {
                for key in &keys {
                    black_box(matches!(deduper.claim(key, lease).await, Ok(Claim::Done)));
                }
            })
        })
    });
    // A long-running worker: the store is full (10 000 keys) and 2 000 messages are in flight
    // (live leases, never evicted). Each new claim evicts the oldest done key; this is the case
    // the throughput profile found walking every live lease before the fix.
    group.bench_function(
        "MemoryDeduper claim + commit, full store, 2 000 live leases",
        |b| {
            b.iter_batched(
                || {
                    let deduper = MemoryDeduper::new(MemoryDeduperConfig {
                        capacity: 10_000,
                        ..MemoryDeduperConfig::default()
                    });
                    runtime.block_on(async {
                        for i in 0..8_000 {
                            let key = format!("done-{i:012}");
                            if let Ok(Claim::First(token)) = deduper.claim(&key, lease).await {
                                let _ = deduper.commit(&key, &token).await;
                            }
                        }
                        for i in 0..2_000 {
                            let _ = deduper.claim(&format!("lease-{i:012}"), lease).await;
                        }
                    });
                    deduper
                },
                |deduper| {
                    runtime.block_on(async {
                        for key in &keys {
                            if let Ok(Claim::First(token)) = deduper.claim(key, lease).await {
                                black_box(deduper.commit(key, &token).await.is_ok());
                            }
                        }
                    });
                    deduper
                },
                BatchSize::LargeInput,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, mapping, packing, dedupe);
criterion_main!(benches);
