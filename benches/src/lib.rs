//! Benchmarks live in `benches/benches/`; the throughput harness in `benches/src/bin/`.
