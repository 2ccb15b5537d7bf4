//! `cio-sync replay` against a wiremock Customer.io: exact requests from a plain
//! and a gzip archive, the same event ids on a second replay, ids derived from content for
//! messages without one, unreadable lines and refused messages dead-lettered as records.
//! (Outages, giving up and resume files: `replay_outage.rs`.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cio_segment_sync::builder::SyncBuilder;
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::dead_letter::{MemoryDeadLetters, Reason, SEGMENT_MESSAGE, Source};
use cio_segment_sync::flows::router::SegmentRouter;
use cio_segment_sync::flows::triggers::{SegmentToCustomerIo, TriggersConfig};
use cio_sync::cli::{Cli, Command};
use cio_sync::replay::{Input, ReplayOptions, derived_message_id, messages_from_line, replay};
use clap::Parser;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const AT: &str = "2024-05-01T10:15:30.123Z";
const AT_MS: i64 = 1_714_558_530_123;
const AT_S: i64 = AT_MS / 1000;

const LINE_1: &str = r#"{"type":"track","messageId":"r-1","userId":"u-1","event":"Order Completed","properties":{"total":30},"timestamp":"2024-05-01T10:15:30.123Z"}"#;
/// No messageId.
const LINE_2: &str =
    r#"{"type":"track","userId":"u-2","event":"Viewed","timestamp":"2024-05-01T10:15:30.123Z"}"#;
/// A batch envelope; its first item has no messageId.
const LINE_3: &str = r#"{"batch":[{"type":"identify","userId":"u-3","traits":{"plan":"pro"},"timestamp":"2024-05-01T10:15:30.123Z"}, {"type":"track","messageId":"r-4","userId":"u-4","event":"Clicked","timestamp":"2024-05-01T10:15:30.123Z"}],"context":{"library":{"name":"archive"}}}"#;
const LINE_4: &str = "{not json";

/// SHA-256 (first 128 bits, hex) of LINE_2's bytes, computed outside Rust.
const LINE_2_ID: &str = "replay-sha256-ade2296f32d4017ae58018b3abdbe851";
/// The same of LINE_3's first item exactly as written in the line.
const ITEM_3_ID: &str = "replay-sha256-e836bdd9ae204b7b84d0d74d4d761da3";

fn archive_text() -> String {
    format!("{LINE_1}\n{LINE_2}\n\n{LINE_3}\n{LINE_4}\n")
}

fn write_plain(dir: &Path) -> PathBuf {
    let path = dir.join("archive.jsonl");
    std::fs::write(&path, archive_text()).unwrap();
    path
}

fn write_gz(dir: &Path) -> PathBuf {
    let path = dir.join("archive.jsonl.gz");
    let file = std::fs::File::create(&path).unwrap();
    let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    encoder.write_all(archive_text().as_bytes()).unwrap();
    encoder.finish().unwrap();
    path
}

/// One operation per request so each message's request is exact whatever the concurrency.
fn flow(server: &MockServer) -> SegmentRouter {
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(&server.uri())
        .unwrap();
    let client = TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap();
    let mut triggers = TriggersConfig::default();
    triggers.dispatcher.max_items = std::num::NonZeroUsize::new(1);
    triggers.dispatcher.linger_ms = Some(5);
    triggers.dispatcher.max_attempts = std::num::NonZeroU32::new(1);
    let (flow, _worker) = SegmentToCustomerIo::builder(client, triggers).spawn();
    SegmentRouter::new(Arc::new(flow))
}

async fn expect_op(server: &MockServer, operation: Value, times: u64) {
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", "Basic c2l0ZTprZXk="))
        .and(body_json(json!({ "batch": [operation] })))
        .respond_with(ResponseTemplate::new(200))
        .expect(times)
        .mount(server)
        .await;
}

/// The four operations the archive must produce, each expected `times` times.
async fn expect_archive(server: &MockServer, times: u64) {
    expect_op(
        server,
        json!({"type": "person", "action": "event", "identifiers": {"id": "u-1"},
               "name": "Order Completed", "id": event_id("r-1", AT_MS).to_string(),
               "timestamp": AT_S, "attributes": {"total": 30}}),
        times,
    )
    .await;
    expect_op(
        server,
        json!({"type": "person", "action": "event", "identifiers": {"id": "u-2"},
               "name": "Viewed", "id": event_id(LINE_2_ID, AT_MS).to_string(),
               "timestamp": AT_S}),
        times,
    )
    .await;
    expect_op(
        server,
        json!({"type": "person", "action": "identify", "identifiers": {"id": "u-3"},
               "timestamp": AT_S, "attributes": {"plan": "pro"}}),
        times,
    )
    .await;
    expect_op(
        server,
        json!({"type": "person", "action": "event", "identifiers": {"id": "u-4"},
               "name": "Clicked", "id": event_id("r-4", AT_MS).to_string(),
               "timestamp": AT_S}),
        times,
    )
    .await;
}

#[test]
fn ids_are_derived_from_the_bytes_as_written() {
    assert_eq!(derived_message_id(LINE_2.as_bytes()), LINE_2_ID);
    let (messages, unreadable) = messages_from_line(LINE_2);
    assert!(unreadable.is_empty());
    assert_eq!(messages[0].message_id(), Some(LINE_2_ID));

    let (messages, unreadable) = messages_from_line(LINE_3);
    assert!(unreadable.is_empty());
    let ids: Vec<_> = messages.iter().map(|m| m.message_id()).collect();
    assert_eq!(ids, [Some(ITEM_3_ID), Some("r-4")]);
    // The envelope's context reached the items.
    let item = serde_json::to_value(&messages[1]).unwrap();
    assert_eq!(item["context"]["library"]["name"], "archive");

    // An existing messageId is kept.
    let (messages, _) = messages_from_line(LINE_1);
    assert_eq!(messages[0].message_id(), Some("r-1"));

    let (messages, unreadable) = messages_from_line(LINE_4);
    assert!(messages.is_empty());
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0].raw, Value::String(LINE_4.to_owned()));
    assert_eq!(AT, "2024-05-01T10:15:30.123Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_archive_replayed_twice_sends_the_same_requests() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_plain(dir.path());
    let server = MockServer::start().await;
    expect_archive(&server, 2).await;

    for _ in 0..2 {
        // A fresh flow each time (a new process): its deduper knows nothing of the first run.
        let flow = flow(&server);
        let dead = MemoryDeadLetters::new(10);
        let summary = replay(
            &flow,
            &[Input::Archive(file.clone())],
            &ReplayOptions::default(),
            &dead,
            None,
        )
        .await
        .unwrap();
        flow.triggers().shutdown().await;
        assert_eq!(summary.read, 4);
        assert_eq!(summary.delivered, 4);
        assert!(summary.dead_lettered.is_empty());
        assert_eq!(summary.unreadable.values().sum::<usize>(), 1);
        assert!(!summary.is_clean());

        let records = dead.records();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].sink, SEGMENT_MESSAGE);
        assert_eq!(records[0].item, Value::String(LINE_4.to_owned()));
        assert_eq!(
            records[0].source,
            Some(Source::Archive {
                file: file.display().to_string(),
                line: 5
            })
        );
        assert!(
            matches!(&records[0].reason, Reason::Unreadable { error } if error.starts_with("not JSON")),
            "{:?}",
            records[0].reason
        );
    }
    server.verify().await;
    assert_eq!(server.received_requests().await.unwrap().len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_archive_sends_exactly_what_the_plain_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_gz(dir.path());
    let server = MockServer::start().await;
    expect_archive(&server, 1).await;
    let flow = flow(&server);
    let dead = MemoryDeadLetters::new(10);
    let summary = replay(
        &flow,
        &[Input::Archive(file)],
        &ReplayOptions::default(),
        &dead,
        None,
    )
    .await
    .unwrap();
    flow.triggers().shutdown().await;
    assert_eq!(summary.read, 4);
    assert_eq!(summary.delivered, 4);
    server.verify().await;
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_message_is_dead_lettered_and_a_missing_file_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.jsonl");
    std::fs::write(&path, format!("{LINE_1}\n")).unwrap();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_matcher())
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"errors": [{"reason": "bad"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let flow = flow(&server);
    let dead = MemoryDeadLetters::new(10);
    let missing = dir.path().join("missing.jsonl");
    let summary = replay(
        &flow,
        &[
            Input::Archive(path.clone()),
            Input::Archive(missing.clone()),
        ],
        &ReplayOptions::default(),
        &dead,
        None,
    )
    .await
    .unwrap();
    flow.triggers().shutdown().await;
    assert_eq!(summary.read, 1);
    assert_eq!(summary.delivered, 0);
    assert_eq!(summary.dead_lettered.values().sum::<usize>(), 1);
    assert_eq!(
        summary.unreadable.keys().collect::<Vec<_>>(),
        ["cannot open file (entity not found)"]
    );
    // The refused message, as read (with its archive line), and the file that is not there.
    let records = dead.records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[1].id.as_deref(), Some("r-1"));
    assert_eq!(records[1].item["messageId"], "r-1");
    assert_eq!(records[1].attempts, 1);
    assert!(records[1].submitted_at.is_some());
    assert_eq!(
        records[1].source,
        Some(Source::Archive {
            file: path.display().to_string(),
            line: 1
        })
    );
    assert_eq!(records[1].reason.label(), "rejected_by_server");
    assert!(records[1].reason.is_dead_letter());
    assert_eq!(
        records[0].source,
        Some(Source::Archive {
            file: missing.display().to_string(),
            line: 0
        })
    );
    assert_eq!(records[0].reason.label(), "unreadable");
    server.verify().await;
}

fn path_matcher() -> wiremock::matchers::PathExactMatcher {
    path("/api/v2/batch")
}

#[test]
fn the_command_line_is_parsed_and_checked() {
    let cli = Cli::try_parse_from([
        "cio-sync",
        "replay",
        "--dry-run",
        "--dead-letter",
        "dead.jsonl",
        "--concurrency=8",
        "--rate",
        "50",
        "a.jsonl",
        "b.jsonl.gz",
    ])
    .unwrap();
    let Command::Replay(args) = cli.command else {
        panic!("not the replay command");
    };
    assert!(args.dry_run);
    assert_eq!(args.dead_letter, Some(PathBuf::from("dead.jsonl")));
    assert_eq!(args.concurrency.map(|c| c.get()), Some(8));
    assert_eq!(args.rate.map(|r| r.get()), Some(50));
    assert_eq!(
        args.files,
        [PathBuf::from("a.jsonl"), PathBuf::from("b.jsonl.gz")]
    );

    for (bad, named) in [
        (vec!["--concurrency", "0", "a"], "--concurrency"),
        (vec!["--rate", "fast", "a"], "--rate"),
        (vec!["--rate"], "--rate"),
        (vec!["--bogus", "a"], "--bogus"),
        (vec!["--dry-run"], "FILE"),
    ] {
        let argv = ["cio-sync", "replay"]
            .into_iter()
            .chain(bad.iter().copied());
        let error = Cli::try_parse_from(argv).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{bad:?}");
        assert!(error.to_string().contains(named), "{bad:?}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_config_milestones_and_audience_changes_go_to_their_flows() {
    let server = MockServer::start().await;
    let at_ms = 1_714_558_530_123_i64;
    let at = "2024-05-01T10:15:30.123Z";
    // One operation per request (max_items = 1), in the person's order.
    expect_op(
        &server,
        json!({"type": "person", "action": "identify", "identifiers": {"id": "u-9"},
               "attributes": {"onboarding_signed_up_at": at_ms / 1000,
                              "onboarding_step": "signed_up"}}),
        1,
    )
    .await;
    expect_op(
        &server,
        json!({"type": "person", "action": "event", "identifiers": {"id": "u-9"},
               "name": "Signed Up", "id": event_id("r-1", at_ms).to_string(),
               "timestamp": at_ms / 1000}),
        1,
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/segments/7/add_customers"))
        .and(wiremock::matchers::query_param("id_type", "id"))
        .and(header("authorization", "Basic c2l0ZTprZXk="))
        .and(body_json(json!({"ids": ["u-9"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let config = SyncConfig::from_toml_str(
        r#"
        [triggers.dispatcher]
        max_items = 1
        linger_ms = 5
        max_attempts = 1
        [onboarding]
        milestones = [{ event = "Signed Up", key = "signed_up" }]
        [audience.segments]
        vip = 7
        "#,
        "inline",
    )
    .unwrap();
    let client = TrackClient::new(
        SiteId::new("site"),
        TrackApiKey::new("key"),
        ClientConfig::new(Region::Us)
            .with_track_base_url(&server.uri())
            .unwrap(),
    )
    .unwrap();
    let (engine, workers) = SyncBuilder::new(client, config).build().unwrap();
    for worker in workers {
        tokio::spawn(worker);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("archive.jsonl");
    let lines = [
        json!({"type": "track", "messageId": "r-1", "userId": "u-9", "event": "Signed Up",
               "timestamp": at}),
        json!({"type": "track", "messageId": "r-2", "userId": "u-9",
               "event": "Audience Entered", "timestamp": at,
               "properties": {"audience_key": "vip", "vip": true},
               "context": {"personas": {"computation_class": "audience",
                                        "computation_key": "vip"}}}),
    ];
    std::fs::write(
        &file,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let summary = replay(
        &engine.router,
        &[Input::Archive(file)],
        &ReplayOptions::default(),
        &MemoryDeadLetters::new(10),
        None,
    )
    .await
    .unwrap();
    engine.shutdown().await;
    assert_eq!((summary.read, summary.delivered), (2, 2), "{summary}");
    assert!(summary.is_clean());
    server.verify().await;
}

#[test]
fn the_outage_flags_and_the_dead_letters_commands_are_parsed_and_checked() {
    let cli = Cli::try_parse_from([
        "cio-sync",
        "replay",
        "--give-up-after",
        "1h30m",
        "--resume-to",
        "left.jsonl",
        "--retry-initial",
        "250ms",
        "--retry-max",
        "5m",
        "--jitter-seed",
        "3",
        "--data-dir",
        "/srv/cio",
        "--resume",
        "a.resume.jsonl",
        "--resume",
        "b.resume.jsonl",
    ])
    .unwrap();
    let Command::Replay(args) = cli.command else {
        panic!("not the replay command");
    };
    assert_eq!(
        args.outage.give_up_after,
        Some(std::time::Duration::from_secs(5400))
    );
    assert_eq!(args.resume_to, Some(PathBuf::from("left.jsonl")));
    assert_eq!(
        args.outage.retry_initial,
        std::time::Duration::from_millis(250)
    );
    assert_eq!(args.outage.retry_max, std::time::Duration::from_secs(300));
    assert_eq!(args.outage.jitter_seed, Some(3));
    assert_eq!(args.data_dir, Some(PathBuf::from("/srv/cio")));
    assert_eq!(
        args.resume,
        [
            PathBuf::from("a.resume.jsonl"),
            PathBuf::from("b.resume.jsonl")
        ]
    );
    assert!(args.files.is_empty(), "a resume file is enough input");

    // The defaults: never give up; 1 s doubling to 60 s.
    let cli = Cli::try_parse_from(["cio-sync", "replay", "a.jsonl"]).unwrap();
    let Command::Replay(args) = cli.command else {
        panic!("not the replay command");
    };
    assert_eq!(args.outage.give_up_after, None);
    assert_eq!(args.outage.retry_initial, std::time::Duration::from_secs(1));
    assert_eq!(args.outage.retry_max, std::time::Duration::from_secs(60));

    for (bad, named) in [
        (
            vec!["replay", "--give-up-after", "soon", "a"],
            "--give-up-after",
        ),
        (vec!["replay", "--retry-max", "5", "a"], "no unit"),
        (
            vec!["dead-letters", "list", "--dir", "d", "--redis"],
            "--redis",
        ),
        (
            vec!["dead-letters", "list", "--file", "f", "--redis"],
            "--redis",
        ),
        (vec!["dead-letters", "bogus"], "bogus"),
    ] {
        let argv = std::iter::once("cio-sync").chain(bad.iter().copied());
        let error = Cli::try_parse_from(argv).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{bad:?}");
        assert!(error.to_string().contains(named), "{bad:?}: {error}");
    }

    let cli = Cli::try_parse_from([
        "cio-sync",
        "dead-letters",
        "list",
        "--dir",
        "d",
        "--show-personal-data",
    ])
    .unwrap();
    let Command::DeadLetters(cio_sync::cli::DeadLettersCommand::List(args)) = cli.command else {
        panic!("not dead-letters list");
    };
    assert_eq!(args.store.dir, Some(PathBuf::from("d")));
    assert!(args.show_personal_data);
}
