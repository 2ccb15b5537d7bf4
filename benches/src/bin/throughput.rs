//! The throughput harness: N realistic Segment events (fixed seed) through the whole
//! Segment → Customer.io path — JSON parse, `SyncPipeline` (dedupe, loop guard, identity,
//! mapping), `DispatchDeliver`, the `Dispatcher` and the `CustomerIoBatchSink` — against a
//! local HTTP sink answering `200` (started here) or an external one.
//!
//! ```text
//! cargo run --release -p benches --bin throughput -- --events 100000
//! cargo run --release -p benches --bin throughput -- --events 1000000 --sink http://127.0.0.1:8080
//! ```
//!
//! Prints events/s, request count, mean batch size, p50/p99 submit → outcome latency per
//! event, and the peak RSS. Events are generated lazily and at most `--in-flight` are in the
//! pipeline at once, so memory does not grow with `--events` beyond the two stores that keep
//! state per key: the deduper's done keys (`--dedupe-capacity`, default 100 000) and the
//! identity links (`--identity-capacity`, default 100 000). The library's defaults for both
//! are 1 000 000, which a production host sizes to its memory.

// A command-line tool: printing the report is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benches::{EventGenerator, Histogram, peak_rss_kib};
use bytes::Bytes;
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::dead_letter::MemoryDeadLetters;
use cio_segment_sync::dedupe::{MemoryDeduper, MemoryDeduperConfig};
use cio_segment_sync::dispatch::sinks::CustomerIoBatchSink;
use cio_segment_sync::dispatch::{Dispatcher, DispatcherConfig};
use cio_segment_sync::identity::{
    MemoryIdentityConfig, MemoryIdentityStore, ResolverConfig, StoreResolver,
};
use cio_segment_sync::pipeline::{DispatchDeliver, Outcome, Pipeline, SyncPipeline};
use cio_segment_sync::rate_limit::Unlimited;
use cio_segment_sync::segment_model::Message;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const USAGE: &str = "usage: throughput [--events N] [--sink URL] [--in-flight N] \
[--concurrency N] [--linger-ms N] [--dedupe-capacity N] [--identity-capacity N] [--seed N]";

/// Command-line settings.
#[derive(Debug)]
struct Args {
    events: u64,
    sink: Option<String>,
    in_flight: usize,
    concurrency: usize,
    linger: Option<Duration>,
    dedupe_capacity: usize,
    identity_capacity: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        events: 100_000,
        sink: None,
        in_flight: 2_000,
        concurrency: 4,
        linger: None,
        dedupe_capacity: 100_000,
        identity_capacity: 100_000,
        seed: 42,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--events" => args.events = number(value()?)?,
            "--sink" => args.sink = Some(value()?),
            "--in-flight" => args.in_flight = number(value()?)?.max(1) as usize,
            "--concurrency" => args.concurrency = number(value()?)?.max(1) as usize,
            "--linger-ms" => args.linger = Some(Duration::from_millis(number(value()?)?)),
            "--dedupe-capacity" => args.dedupe_capacity = number(value()?)? as usize,
            "--identity-capacity" => args.identity_capacity = number(value()?)? as usize,
            "--seed" => args.seed = number(value()?)?,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// A minimal HTTP/1.1 server answering every request `200 {}` after reading its body.
/// Returns its base URL; counts requests in `requests`.
async fn start_local_sink(requests: Arc<AtomicU64>) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let requests = requests.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let requests = requests.clone();
                    async move {
                        // Read the whole body, as a real server would, before answering.
                        let _ = request.into_body().collect().await;
                        requests.fetch_add(1, Ordering::Relaxed);
                        let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
                        response
                            .headers_mut()
                            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(url)
}

/// How the events ended.
#[derive(Debug, Default)]
struct Tally {
    delivered: AtomicU64,
    skipped: AtomicU64,
    dead_lettered: AtomicU64,
    /// Not finished and retryable: the source would redeliver them.
    failed: AtomicU64,
    /// Finished with a non-retryable error (the message cannot be mapped).
    unmappable: AtomicU64,
    unparsable: AtomicU64,
    /// Distinct failure messages (with their sources) and their counts; there are few kinds.
    failures: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Tally {
    fn note_failure(&self, err: &(dyn std::error::Error + 'static)) {
        let text = cio_segment_sync::outcome::describe(err);
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *failures.entry(text).or_default() += 1;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("throughput: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let server_requests = Arc::new(AtomicU64::new(0));
    let base_url = match &args.sink {
        Some(url) => url.clone(),
        None => start_local_sink(server_requests.clone())
            .await
            .map_err(|e| format!("cannot start the local sink: {e}"))?,
    };
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(&base_url)
        .map_err(|e| format!("--sink: {e}"))?;
    let client = TrackClient::new(
        SiteId::new("bench-site"),
        TrackApiKey::new("bench-key"),
        config,
    )
    .map_err(|e| format!("client: {e}"))?;
    let dead = Arc::new(MemoryDeadLetters::new(10_000));
    let mut dispatcher_config = DispatcherConfig::default()
        .with_concurrency(NonZeroUsize::new(args.concurrency).unwrap_or(NonZeroUsize::MIN));
    if let Some(linger) = args.linger {
        dispatcher_config = dispatcher_config.with_linger(linger);
    }
    let (handle, worker) = Dispatcher::new(
        CustomerIoBatchSink::new(client),
        dispatcher_config,
        Arc::new(Unlimited),
        dead.clone(),
    );
    let worker = tokio::spawn(worker);
    let deduper = MemoryDeduper::new(MemoryDeduperConfig {
        capacity: args.dedupe_capacity,
        ..MemoryDeduperConfig::default()
    });
    let identities = MemoryIdentityStore::new(MemoryIdentityConfig {
        capacity: args.identity_capacity,
        ..MemoryIdentityConfig::default()
    });
    let pipeline = Arc::new(
        SyncPipeline::builder(Arc::new(DispatchDeliver::new(handle.clone(), dead.clone())))
            .deduper(Arc::new(deduper))
            .resolver(Arc::new(StoreResolver::new(
                Arc::new(identities),
                ResolverConfig::default(),
            )))
            .build(),
    );

    let tally = Arc::new(Tally::default());
    let latency = Arc::new(Histogram::default());
    let rss_before = peak_rss_kib();
    let started = Instant::now();
    let events = EventGenerator::new(args.seed)
        .take(args.events as usize)
        .map(|text| {
            let pipeline = pipeline.clone();
            let tally = tally.clone();
            let latency = latency.clone();
            async move {
                let submitted = Instant::now();
                let message = match Message::from_str(&text) {
                    Ok(message) => message,
                    Err(_) => {
                        tally.unparsable.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                drop(text);
                let counter = match pipeline.process(&message).await {
                    Ok(Outcome::Delivered) => &tally.delivered,
                    Ok(Outcome::Skipped(_)) => &tally.skipped,
                    Ok(_) => &tally.dead_lettered,
                    Err(err) => {
                        tally.note_failure(&err);
                        if err.is_retryable() {
                            &tally.failed
                        } else {
                            &tally.unmappable
                        }
                    }
                };
                counter.fetch_add(1, Ordering::Relaxed);
                latency.record(submitted.elapsed());
            }
        });
    futures::stream::iter(events)
        .buffer_unordered(args.in_flight)
        .collect::<()>()
        .await;
    let elapsed = started.elapsed();
    handle.shutdown().await;
    let _ = worker.await;
    let stats = handle.stats();

    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let requests = if args.sink.is_some() {
        stats.attempts
    } else {
        load(&server_requests)
    };
    let successful = stats.attempts.saturating_sub(stats.retried_attempts).max(1);
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    println!("events            {}", args.events);
    println!(
        "sink              {}",
        args.sink.as_deref().unwrap_or("local hyper (200)")
    );
    println!("elapsed           {:.2} s", elapsed.as_secs_f64());
    println!(
        "events/s          {:.0}",
        args.events as f64 / elapsed.as_secs_f64()
    );
    println!(
        "outcomes          delivered {} / skipped {} / dead-lettered {} / unmappable {} / failed {} / unparsable {}",
        load(&tally.delivered),
        load(&tally.skipped),
        load(&tally.dead_lettered),
        load(&tally.unmappable),
        load(&tally.failed),
        load(&tally.unparsable)
    );
    println!(
        "operations        {} delivered, {} dead-lettered",
        stats.delivered, stats.dead_lettered
    );
    println!(
        "requests          {requests} (dispatcher attempts {}, retries {})",
        stats.attempts, stats.retried_attempts
    );
    println!(
        "mean batch        {:.1} operations",
        stats.delivered as f64 / successful as f64
    );
    println!(
        "latency           p50 {:.1} ms, p99 {:.1} ms (parse → outcome, per event)",
        ms(latency.quantile(0.50)),
        ms(latency.quantile(0.99))
    );
    println!(
        "peak RSS          {} KiB (before the run: {} KiB)",
        peak_rss_kib().map_or_else(|| "n/a".to_owned(), |k| k.to_string()),
        rss_before.map_or_else(|| "n/a".to_owned(), |k| k.to_string())
    );
    let failures = tally
        .failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (failure, count) in failures.iter() {
        println!("error             {count} × {failure}");
    }
    if load(&tally.failed) > 0 || load(&tally.unparsable) > 0 {
        return Err("some events were not delivered and would be redelivered".to_owned());
    }
    Ok(())
}
