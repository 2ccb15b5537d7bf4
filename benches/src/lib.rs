//! Shared pieces of the benchmarks (`benches/benches/`) and the throughput harness
//! (`benches/src/bin/throughput.rs`): a seeded generator of realistic Segment events, a
//! constant-memory latency histogram, and the process's peak resident memory.
//!
//! ```
//! use benches::EventGenerator;
//!
//! let mut events = EventGenerator::new(42);
//! let first = events.next_json();
//! // The same seed gives the same events.
//! assert_eq!(EventGenerator::new(42).next_json(), first);
//! let message = benches::segment_model::Message::from_str(&first)?;
//! assert!(message.message_id().is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

pub use segment_model;

/// How many distinct people the generated events are about.
pub const DEFAULT_PEOPLE: u32 = 10_000;

const EVENT_NAMES: &[&str] = &[
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Order Completed",
    "Signed Up",
    "Feature Used",
    "Subscription Renewed",
    "Email Link Clicked",
];

const PAGES: &[(&str, &str)] = &[
    ("Home", "/"),
    ("Pricing", "/pricing"),
    ("Docs", "/docs/getting-started"),
    ("Blog", "/blog/2024/05/release-notes"),
    ("Checkout", "/checkout"),
];

const USER_AGENT: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/// Realistic Segment messages from a fixed seed: 15 % identify, 60 % track, 15 % page, 5 %
/// group, 5 % alias, about [`DEFAULT_PEOPLE`] people, each with the `context` a browser
/// library sends (library, page, user agent, IP, locale) and 2–12 properties or traits.
/// Serialised events are 600–1 400 bytes, as in production traffic from web sources.
#[derive(Debug, Clone)]
pub struct EventGenerator {
    rng: ChaCha8Rng,
    people: u32,
    index: u64,
}

impl EventGenerator {
    /// A generator over [`DEFAULT_PEOPLE`] people.
    pub fn new(seed: u64) -> Self {
        Self::with_people(seed, DEFAULT_PEOPLE)
    }

    /// A generator over `people` people (at least one).
    pub fn with_people(seed: u64, people: u32) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            people: people.max(1),
            index: 0,
        }
    }

    /// The next event as a JSON value.
    pub fn next_value(&mut self) -> Value {
        let i = self.index;
        self.index += 1;
        let person = self.rng.random_range(0..self.people);
        // One millisecond apart, from 2024-05-01T10:15:30Z.
        let millis = 1_714_558_530_000_i64 + i as i64;
        let timestamp = format_millis(millis);
        let mut common = json!({
            "messageId": format!("bench-{i:012}"),
            "timestamp": timestamp,
            "sentAt": timestamp,
            "context": self.context(),
        });
        let anonymous = format!("anon-{person:08x}-{:04x}", self.rng.random::<u16>());
        let user = format!("user-{person}");
        let roll = self.rng.random_range(0..100);
        let (kind, body) = match roll {
            0..15 => (
                "identify",
                json!({"userId": user, "anonymousId": anonymous, "traits": self.traits(person)}),
            ),
            15..75 => {
                let event = EVENT_NAMES[self.rng.random_range(0..EVENT_NAMES.len())];
                (
                    "track",
                    json!({"userId": user, "event": event, "properties": self.properties()}),
                )
            }
            75..90 => {
                let (name, path) = PAGES[self.rng.random_range(0..PAGES.len())];
                (
                    "page",
                    json!({
                        "userId": user, "name": name,
                        "properties": {
                            "path": path, "url": format!("https://www.example.com{path}"),
                            "title": format!("{name} | Example"), "referrer": "https://www.google.com/",
                            "search": ""
                        }
                    }),
                )
            }
            90..95 => (
                "group",
                json!({
                    "userId": user, "groupId": format!("account-{}", person / 10),
                    "traits": {"name": format!("Account {}", person / 10), "plan": "business",
                               "employees": self.rng.random_range(5..5_000)}
                }),
            ),
            _ => ("alias", json!({"userId": user, "previousId": anonymous})),
        };
        if let (Value::Object(common), Value::Object(body)) = (&mut common, body) {
            common.insert("type".to_owned(), Value::from(kind));
            common.extend(body);
        }
        common
    }

    /// The next event serialised.
    pub fn next_json(&mut self) -> String {
        self.next_value().to_string()
    }

    fn context(&mut self) -> Value {
        json!({
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "ip": format!("203.0.113.{}", self.rng.random_range(1..255)),
            "locale": "en-GB",
            "userAgent": USER_AGENT,
            "page": {"path": "/pricing", "url": "https://www.example.com/pricing",
                     "referrer": "https://www.google.com/", "title": "Pricing | Example"},
        })
    }

    fn traits(&mut self, person: u32) -> Value {
        let mut traits = Map::new();
        traits.insert("email".into(), format!("person{person}@example.com").into());
        traits.insert("firstName".into(), "Ada".into());
        traits.insert("lastName".into(), format!("Tester{person}").into());
        traits.insert("createdAt".into(), "2023-11-02T08:00:00.000Z".into());
        traits.insert(
            "plan".into(),
            ["free", "pro", "business"][(person % 3) as usize].into(),
        );
        for extra in 0..self.rng.random_range(0..8) {
            traits.insert(
                format!("custom_trait_{extra}"),
                Value::from(self.rng.random_range(0..1_000_000)),
            );
        }
        Value::Object(traits)
    }

    fn properties(&mut self) -> Value {
        let mut props = Map::new();
        props.insert(
            "product_id".into(),
            format!("sku-{}", self.rng.random_range(0..5_000)).into(),
        );
        props.insert(
            "price".into(),
            Value::from(self.rng.random_range(100..50_000) as f64 / 100.0),
        );
        props.insert("currency".into(), "EUR".into());
        for extra in 0..self.rng.random_range(0..10) {
            props.insert(
                format!("attribute_{extra}"),
                format!("value-{}", self.rng.random::<u32>()).into(),
            );
        }
        Value::Object(props)
    }
}

impl Iterator for EventGenerator {
    type Item = String;

    /// Never ends: take as many as needed.
    fn next(&mut self) -> Option<String> {
        Some(self.next_json())
    }
}

/// `millis` since the Unix epoch as RFC 3339 with milliseconds, UTC.
fn format_millis(millis: i64) -> String {
    match jiff::Timestamp::from_millisecond(millis) {
        Ok(ts) => format!("{ts:.3}"),
        // Out of jiff's range only for absurd inputs; fall back to the epoch.
        Err(_) => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

/// A latency histogram in constant memory: logarithmic buckets of about 5 % from 1 µs to
/// about 20 minutes, recorded concurrently without locks.
#[derive(Debug)]
pub struct Histogram {
    buckets: Vec<AtomicU64>,
}

/// Growth factor between bucket bounds.
const GROWTH: f64 = 1.05;
/// Buckets: 1.05^430 µs ≈ 20 minutes.
const BUCKETS: usize = 430;

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    /// Counts one observation.
    pub fn record(&self, latency: Duration) {
        let micros = latency.as_secs_f64() * 1e6;
        let index = if micros <= 1.0 {
            0
        } else {
            ((micros.ln() / GROWTH.ln()).ceil() as usize).min(BUCKETS - 1)
        };
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The upper bound of the bucket holding the `q` quantile (0.0–1.0), or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(Duration::from_secs_f64(GROWTH.powi(index as i32) / 1e6));
            }
        }
        None
    }
}

/// The process's peak resident set size in KiB (`VmHWM` in `/proc/self/status`), where the
/// platform has it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_seeded_and_mixes_every_call() {
        let a: Vec<String> = EventGenerator::new(1).take(500).collect();
        let b: Vec<String> = EventGenerator::new(1).take(500).collect();
        assert_eq!(a, b);
        let mut kinds = std::collections::BTreeMap::new();
        for text in &a {
            let message = segment_model::Message::from_str(text).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            *kinds
                .entry(value["type"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
            assert!(message.message_id().is_some());
            assert!((300..2_000).contains(&text.len()), "{}", text.len());
        }
        assert_eq!(
            kinds.keys().map(String::as_str).collect::<Vec<_>>(),
            ["alias", "group", "identify", "page", "track"]
        );
        assert!(kinds["track"] > kinds["identify"]);
    }

    #[test]
    fn histogram_quantiles_land_in_the_right_bucket() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!(
            p50 >= Duration::from_millis(50) && p50 <= Duration::from_micros(52_500),
            "{p50:?}"
        );
        assert!(
            p99 >= Duration::from_millis(99) && p99 <= Duration::from_micros(104_000),
            "{p99:?}"
        );
        assert_eq!(h.count(), 100);
    }
}
