//! `cio-sync replay` and `cio-sync dead-letters` as a user runs them (the binary, with the
//! environment it reads), against a scripted fake Customer.io on 127.0.0.1:0:
//!
//! - an outage (503 with Retry-After for the first requests) is waited out: every event is
//!   delivered exactly once, in each person's order, exit 0;
//! - `--give-up-after` against a fake that never accepts one person: the resume file holds
//!   exactly that person's events with their ids, exit 4; replaying the resume file against a
//!   healthy fake sends exactly those, with the same ids, exit 0;
//! - a 400 on one event: exit 3, the event is a dead letter in the data directory, `dead-letters
//!   list` counts it without personal data, `dead-letters replay` sends it again with the same
//!   id and marks it, and a second replay sends nothing.
//!
//! Timings are short and configured (`--retry-initial 10ms --retry-max 40ms`); the assertions
//! are on requests and exit statuses, never on durations.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::dead_letter::{Reason, read_records};
use cio_sync::replay::derived_message_id;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BIN: &str = env!("CARGO_BIN_EXE_cio-sync");
const AT: &str = "2024-05-01T10:15:30.123Z";
const AT_MS: i64 = 1_714_558_530_123;
/// `Basic base64("site:key")`.
const CIO_AUTH: &str = "Basic c2l0ZTprZXk=";

/// The settings of every run: one operation per request (so each request is one event), no
/// retry inside the dispatcher (each 503 comes straight back to the replay), short linger.
const CONFIG: &str = "[triggers.dispatcher]\nmax_items = 1\nlinger_ms = 5\nmax_attempts = 1\n";

/// What the fake answers a request, given its number (from 0) and its operation: a status.
type Script = dyn Fn(usize, &Value) -> u16 + Send + Sync;

/// A fake Customer.io Track API: every request to `/api/v2/batch` is answered by a script and
/// recorded with its answer. 503 comes with a Retry-After, 400 with an error body naming a field.
#[derive(Clone)]
struct Fake {
    script: Arc<Script>,
    count: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<(Value, u16)>>>,
}

impl Respond for Fake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let authorized = request
            .headers
            .get("authorization")
            .is_some_and(|v| v.as_bytes() == CIO_AUTH.as_bytes());
        let operation = body["batch"][0].clone();
        let status = if authorized && body["batch"].as_array().map(Vec::len) == Some(1) {
            (self.script)(n, &operation)
        } else {
            401
        };
        self.seen.lock().unwrap().push((operation, status));
        match status {
            // `Retry-After: 0`: the dispatcher honours a server's delay by pausing every send on
            // the API, which would make these tests' short give-up windows hold one or two tries;
            // the replay's own waits are what they exercise.
            503 => ResponseTemplate::new(503).insert_header("retry-after", "0"),
            400 => ResponseTemplate::new(400).set_body_json(json!({
                "errors": [{"reason": "invalid", "field": "name", "message": "bad event"}]
            })),
            other => ResponseTemplate::new(other).set_body_json(json!({})),
        }
    }
}

impl Fake {
    async fn start(
        script: impl Fn(usize, &Value) -> u16 + Send + Sync + 'static,
    ) -> (MockServer, Self) {
        let server = MockServer::start().await;
        let fake = Self {
            script: Arc::new(script),
            count: Arc::default(),
            seen: Arc::default(),
        };
        Mock::given(wiremock::matchers::method("POST"))
            .and(wiremock::matchers::path("/api/v2/batch"))
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        (server, fake)
    }

    /// The event ids Customer.io accepted, in the order it accepted them.
    fn accepted(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, status)| *status == 200)
            .map(|(op, _)| op["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn answered(&self, status: u16) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| *s == status)
            .count()
    }
}

/// One event of an archive.
#[derive(Debug, Clone)]
struct Line {
    person: String,
    line: usize,
    message_id: String,
    event_id: String,
}

/// An archive of `per_person` events for each of `people`, interleaved; every third event has
/// no messageId (its id is derived from its bytes).
fn archive(dir: &Path, people: &[&str], per_person: usize) -> (PathBuf, Vec<Line>) {
    let mut text = String::new();
    let mut lines = Vec::new();
    for step in 0..per_person {
        for person in people {
            let n = lines.len() + 1;
            let mut event = json!({"type": "track", "userId": person,
                                   "event": format!("Step {step}"), "timestamp": AT});
            if n % 3 != 0 {
                event["messageId"] = json!(format!("m-{n}"));
            }
            let text_line = event.to_string();
            let message_id = match event.get("messageId") {
                Some(id) => id.as_str().unwrap().to_owned(),
                None => derived_message_id(text_line.as_bytes()),
            };
            lines.push(Line {
                person: (*person).to_owned(),
                line: n,
                event_id: event_id(&message_id, AT_MS).to_string(),
                message_id,
            });
            text.push_str(&text_line);
            text.push('\n');
        }
    }
    let path = dir.join("archive.jsonl");
    std::fs::write(&path, text).unwrap();
    (path, lines)
}

/// Event ids by person, in archive order.
fn expected_by_person(lines: &[Line]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        out.entry(line.person.clone())
            .or_default()
            .push(line.event_id.clone());
    }
    out
}

/// Runs the binary with the fake's URL and credentials, nothing else from the environment.
/// The binary with the fake's credentials and URL, and nothing else from the environment.
fn command(server: &MockServer, args: &[String]) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command
        .env_clear()
        .env("CIO_SITE_ID", "site")
        .env("CIO_API_KEY", "key")
        .env("CIO_TRACK_URL", server.uri())
        .env("RUST_LOG", "warn")
        .args(args);
    command
}

async fn run(server: &MockServer, args: Vec<String>) -> Output {
    let mut command = command(server, &args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn stdout(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The accepted event ids split by person (every id names its person through `expected`).
fn by_person(
    accepted: &[String],
    expected: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, Vec<String>> {
    let owner: HashMap<&String, &String> = expected
        .iter()
        .flat_map(|(person, ids)| ids.iter().map(move |id| (id, person)))
        .collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in accepted {
        let person = owner
            .get(id)
            .unwrap_or_else(|| panic!("unexpected id {id}"));
        out.entry((*person).clone()).or_default().push(id.clone());
    }
    out
}

fn write_config(dir: &Path) -> String {
    let path = dir.join("sync.toml");
    std::fs::write(&path, CONFIG).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_waited_out_and_every_event_is_delivered_once_in_each_persons_order() {
    let dir = tempfile::tempdir().unwrap();
    let (file, lines) = archive(dir.path(), &["u-a", "u-b", "u-c"], 6);
    let expected = expected_by_person(&lines);
    const DOWN_FOR: usize = 12;
    let (server, fake) = Fake::start(|n, _| if n < DOWN_FOR { 503 } else { 200 }).await;
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let output = run(
        &server,
        args(&[
            "replay",
            "--config",
            &config,
            "--data-dir",
            data.to_str().unwrap(),
            "--retry-initial",
            "10ms",
            "--retry-max",
            "40ms",
            "--jitter-seed",
            "7",
            file.to_str().unwrap(),
        ]),
    )
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("read 18, delivered 18,"), "{text}");
    assert!(text.contains("not sent 0"), "{text}");
    assert!(text.contains("waited "), "{text}");
    assert_eq!(fake.answered(503), DOWN_FOR, "{text}");
    assert_eq!(fake.answered(200), 18, "{text}");
    assert_eq!(fake.requests(), DOWN_FOR + 18);
    let accepted = fake.accepted();
    let mut unique = accepted.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        18,
        "each event accepted exactly once: {accepted:?}"
    );
    assert_eq!(
        by_person(&accepted, &expected),
        expected,
        "each person's order"
    );
    // Nothing was dead-lettered: no dead-letter file was even created.
    let files: Vec<_> = std::fs::read_dir(&data)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "{files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_writes_the_undelivered_events_to_a_resume_file_that_replays_with_the_same_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (file, lines) = archive(dir.path(), &["u-a", "u-b"], 5);
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let resume = dir.path().join("resume.jsonl");

    // Customer.io accepts u-a and is down for u-b for as long as the replay waits.
    let (down, fake) = Fake::start(|_, op| {
        if op["identifiers"]["id"] == "u-a" {
            200
        } else {
            503
        }
    })
    .await;
    let output = run(
        &down,
        args(&[
            "replay",
            "--config",
            &config,
            "--data-dir",
            data.to_str().unwrap(),
            "--retry-initial",
            "10ms",
            "--retry-max",
            "40ms",
            "--give-up-after",
            "1500ms",
            "--resume-to",
            resume.to_str().unwrap(),
            file.to_str().unwrap(),
        ]),
    )
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(4), "{text}");
    assert!(
        text.contains(&format!("cio-sync replay --resume {}", resume.display())),
        "{text}"
    );
    let accepted = fake.accepted();
    // u-a's events were accepted once each, in order (all of them, unless the machine was so
    // slow that the deadline came first: then the rest is in the resume file).
    let u_a: Vec<String> = lines
        .iter()
        .filter(|l| l.person == "u-a")
        .map(|l| l.event_id.clone())
        .collect();
    assert_eq!(accepted[..], u_a[..accepted.len()], "{text}");
    // Only u-b's first event was ever sent to the down side, again and again: the others
    // waited behind it.
    let first_b = &lines[1].event_id;
    let tried: Vec<Value> = fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, status)| *status == 503)
        .map(|(op, _)| op["id"].clone())
        .collect();
    assert!(tried.len() >= 3, "{tried:?}");
    assert!(tried.iter().all(|id| id == &json!(first_b)), "{tried:?}");

    // The resume file: exactly the events not accepted, each person's in order, as records
    // with their messageIds (derived ones included) and archive lines.
    let not_delivered: Vec<&Line> = lines
        .iter()
        .filter(|l| !accepted.contains(&l.event_id))
        .collect();
    assert!(not_delivered.len() >= 5, "all of u-b at least");
    let parsed = read_records(&resume).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let records: Vec<_> = parsed.records.into_iter().map(|(_, r)| r).collect();
    let mut written: Vec<&Line> = Vec::new();
    for record in &records {
        assert_eq!(record.v, 1);
        let message = record.message().unwrap().unwrap();
        assert_eq!(message.message_id(), record.id.as_deref());
        let line = lines
            .iter()
            .find(|l| Some(l.message_id.as_str()) == record.id.as_deref())
            .expect("a message of the archive");
        assert_eq!(
            record.source.as_ref().unwrap().to_string(),
            format!("{}:{}", file.display(), line.line)
        );
        assert!(matches!(record.reason, Reason::NotSent { .. }));
        written.push(line);
    }
    let mut sorted = written.clone();
    sorted.sort_by_key(|l| l.line);
    assert_eq!(
        sorted.iter().map(|l| l.line).collect::<Vec<_>>(),
        not_delivered.iter().map(|l| l.line).collect::<Vec<_>>(),
        "exactly the events not delivered"
    );
    assert_eq!(
        expected_by_person(&written.iter().map(|l| (*l).clone()).collect::<Vec<_>>()),
        expected_by_person(
            &not_delivered
                .iter()
                .map(|l| (*l).clone())
                .collect::<Vec<_>>()
        ),
        "each person's order"
    );
    match &records[0].reason {
        Reason::NotSent { last_error } => assert!(last_error.contains("503"), "{last_error}"),
        other => panic!("expected not_sent, got {other:?}"),
    }
    assert!(records[0].attempts >= 3, "{}", records[0].attempts);
    assert!(
        text.contains(&format!("not sent {}", records.len())),
        "{text}"
    );

    // A second replay of the resume file, Customer.io healthy: exactly those, same ids.
    let (healthy, fake) = Fake::start(|_, _| 200).await;
    let output = run(
        &healthy,
        args(&[
            "replay",
            "--config",
            &config,
            "--data-dir",
            data.to_str().unwrap(),
            "--resume",
            resume.to_str().unwrap(),
        ]),
    )
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("read {0}, delivered {0},", records.len())),
        "{text}"
    );
    let resent = fake.accepted();
    assert_eq!(fake.requests(), records.len());
    assert_eq!(
        by_person(&resent, &expected_by_person(&lines)),
        expected_by_person(&written.iter().map(|l| (*l).clone()).collect::<Vec<_>>()),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_is_a_dead_letter_that_dead_letters_list_counts_and_replay_resends_once() {
    let dir = tempfile::tempdir().unwrap();
    let (file, lines) = archive(dir.path(), &["ada@example.com", "u-b"], 2);
    // Line 3: ada's second event, whose messageId is derived from its bytes.
    let refused = lines[2].clone();
    assert_eq!(refused.person, "ada@example.com");
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();

    let refused_id = refused.event_id.clone();
    let (server, fake) = Fake::start(move |_, op| {
        if op["id"] == json!(refused_id) {
            400
        } else {
            200
        }
    })
    .await;
    let output = run(
        &server,
        args(&[
            "replay",
            "--config",
            &config,
            "--data-dir",
            &data_arg,
            file.to_str().unwrap(),
        ]),
    )
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(text.contains("dead-lettered 1"), "{text}");
    assert!(
        text.contains(&format!("dead letters are in {data_arg}")),
        "{text}"
    );
    assert_eq!(fake.accepted().len(), 3);
    assert_eq!(fake.answered(400), 1);

    // Listed: counted by reason, without the person's email, the id or the server's words.
    let list = args(&["dead-letters", "list", "--dir", &data_arg]);
    let output = run(&server, list.clone()).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("1 pending, 0 unreadable"), "{text}");
    assert!(text.contains("1 × rejected_by_server"), "{text}");
    assert!(text.contains("segment.message"), "{text}");
    assert!(text.contains(&format!("{}:3", file.display())), "{text}");
    for secret in ["ada@example.com", "bad event", refused.message_id.as_str()] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let mut shown = list.clone();
    shown.push("--show-personal-data".to_owned());
    let text = stdout(&run(&server, shown).await);
    for detail in ["ada@example.com", "bad event", refused.message_id.as_str()] {
        assert!(text.contains(detail), "{detail} missing from {text}");
    }

    // Fixed on Customer.io's side: the dead letter is sent again with the same id and marked.
    let (healthy, fake) = Fake::start(|_, _| 200).await;
    let replay = args(&[
        "dead-letters",
        "replay",
        "--config",
        &config,
        "--dir",
        &data_arg,
    ]);
    let output = run(&healthy, replay.clone()).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("pending 1: delivered 1"), "{text}");
    assert_eq!(fake.accepted(), std::slice::from_ref(&refused.event_id));
    let sent = fake.seen.lock().unwrap()[0].0.clone();
    assert_eq!(
        sent,
        json!({"type": "person", "action": "event", "identifiers": {"email": "ada@example.com"},
               "name": "Step 1", "id": refused.event_id, "timestamp": AT_MS / 1000})
    );

    let output = run(&healthy, list).await;
    assert!(stdout(&output).contains("0 pending"), "{}", stdout(&output));
    let output = run(&healthy, replay).await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(fake.requests(), 1, "a second replay sends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_resume_file_or_a_bad_duration_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = archive(dir.path(), &["u-a"], 1);
    let exists = dir.path().join("exists.jsonl");
    std::fs::write(&exists, "").unwrap();
    let (server, fake) = Fake::start(|_, _| 200).await;
    let data = dir.path().join("data");
    let output = run(
        &server,
        args(&[
            "replay",
            "--data-dir",
            data.to_str().unwrap(),
            "--give-up-after",
            "1h",
            "--resume-to",
            exists.to_str().unwrap(),
            file.to_str().unwrap(),
        ]),
    )
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("exists already"), "{text}");

    let output = run(
        &server,
        args(&["replay", "--give-up-after", "90", file.to_str().unwrap()]),
    )
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("the number 90 has no unit"), "{text}");
    assert_eq!(fake.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_dead_letters_are_resent_through_their_dispatcher_in_order() {
    use cio_segment_sync::dead_letter::{
        DeadLetter, DeadLetterDir, DeadLetterReason, DeadLetterSink, DeadLetterStore,
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // What `serve` records when Customer.io refuses operations: the operations themselves.
    let store = DeadLetterDir::open(&data).unwrap();
    let op = |n: i64| {
        json!({"type": "person", "action": "event", "identifiers": {"id": "u-1"},
               "name": format!("Event {n}"), "id": event_id(&format!("s-{n}"), AT_MS + n).to_string(),
               "timestamp": AT_MS / 1000})
    };
    for n in 0..3 {
        let mut entry = DeadLetter::new(
            "customerio.track.v2.batch",
            op(n),
            DeadLetterReason::RejectedByServer {
                message: "bad".into(),
                field: None,
            },
            1,
        );
        entry.ordering_key = Some(42);
        store.record(entry).await.unwrap();
    }
    // A reporting-webhook event that could not be read: nothing can send it again.
    store
        .record(DeadLetter::new(
            "customerio.reporting_webhook",
            json!({"metric": "nope"}),
            DeadLetterReason::TooLarge { bytes: 2, limit: 1 },
            0,
        ))
        .await
        .unwrap();
    drop(store);

    let (server, fake) = Fake::start(|_, _| 200).await;
    let config = write_config(dir.path());
    let output = run(
        &server,
        args(&[
            "dead-letters",
            "replay",
            "--config",
            &config,
            "--dir",
            data.to_str().unwrap(),
        ]),
    )
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(text.contains("pending 4: delivered 3"), "{text}");
    assert!(
        text.contains("no dispatcher for sink `customerio.reporting_webhook`"),
        "{text}"
    );
    let sent: Vec<Value> = fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(op, _)| op.clone())
        .collect();
    assert_eq!(
        sent,
        [op(0), op(1), op(2)],
        "the same operations, in their order"
    );

    let left = DeadLetterDir::open(&data).unwrap().pending().await.unwrap();
    assert_eq!(left.records.len(), 1);
    assert_eq!(left.records[0].record.sink, "customerio.reporting_webhook");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_outage_writes_the_resume_file_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let (file, lines) = archive(dir.path(), &["u-a", "u-b"], 3);
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let resume = dir.path().join("resume.jsonl");
    // Customer.io is down for the whole run; no --give-up-after: the replay would wait forever.
    let (down, fake) = Fake::start(|_, _| 503).await;
    let child = command(
        &down,
        &args(&[
            "replay",
            "--config",
            &config,
            "--data-dir",
            data.to_str().unwrap(),
            "--retry-initial",
            "10ms",
            "--retry-max",
            "40ms",
            "--resume-to",
            resume.to_str().unwrap(),
            file.to_str().unwrap(),
        ]),
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Once Customer.io has refused a few tries, stop the replay as an orchestrator would.
    while fake.seen.lock().unwrap().len() < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(4), "{text}");
    // Nothing was accepted, and every event is in the resume file with its messageId.
    assert!(fake.accepted().is_empty());
    let parsed = read_records(&resume).unwrap();
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let mut ids: Vec<String> = parsed
        .records
        .iter()
        .map(|(_, record)| record.id.clone().unwrap())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = lines.iter().map(|l| l.message_id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected, "{text}");
}
