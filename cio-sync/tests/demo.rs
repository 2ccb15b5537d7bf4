//! `cio-sync demo`'s core path: the bundled sample events through the flows the bundled example
//! configuration turns on, against wiremock (exact requests, in order) and against the dry-run
//! recording server (the same requests recorded and printed).

use cio_segment_sync::builder::SyncBuilder;
use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::customerio_client::{ClientConfig, Region, SiteId, TrackApiKey, TrackClient};
use cio_segment_sync::testing::RecordingServer;
use cio_sync::demo::{EXAMPLE_CONFIG, LineReport, SAMPLE_EVENTS, Summary, handle_line};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const USER: &str = "user-1001";

fn id(message_id: &str, ms: i64) -> String {
    event_id(message_id, ms).to_string()
}

/// Every request the sample must produce, in order: (path, query `id_type`, JSON body).
fn expected() -> Vec<(&'static str, Option<&'static str>, Value)> {
    let person = json!({"id": USER});
    let batch = |ops: Value| json!({ "batch": ops });
    vec![
        // 1. identify: the profile, stitching the earlier anonymous activity.
        (
            "/api/v2/batch",
            None,
            batch(json!([{
                "type": "person", "action": "identify", "identifiers": person,
                "timestamp": 1_714_558_530,
                "attributes": {"anonymous_id": "anon-7f3a9c", "created_at": 1_714_464_000,
                    "email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace",
                    "plan": "pro"}
            }])),
        ),
        // 2. milestone 1: progress attributes, then the event itself.
        (
            "/api/v2/batch",
            None,
            batch(json!([
                {"type": "person", "action": "identify", "identifiers": person,
                 "attributes": {"onboarding_signed_up_at": 1_714_558_560,
                                "onboarding_step": "signed_up"}},
                {"type": "person", "action": "event", "identifiers": person, "name": "Signed Up",
                 "id": id("node-next-1714558500000-6c9d2b8e-37b1-4f0c-9a1e-2b3c4d5e6f02",
                          1_714_558_560_000),
                 "timestamp": 1_714_558_560,
                 "attributes": {"plan": "pro", "referrer": "newsletter"}}
            ])),
        ),
        // 3. milestone 2.
        (
            "/api/v2/batch",
            None,
            batch(json!([
                {"type": "person", "action": "identify", "identifiers": person,
                 "attributes": {"onboarding_project_at": 1_714_558_811,
                                "onboarding_step": "project"}},
                {"type": "person", "action": "event", "identifiers": person,
                 "name": "Project Created",
                 "id": id("0e2f1d4c-5b6a-4c3d-8e9f-0a1b2c3d4e03", 1_714_558_811_500),
                 "timestamp": 1_714_558_811,
                 "attributes": {"project_id": "p-42", "template": "blank"}}
            ])),
        ),
        // 4. page (its anonymousId is linked to the person by line 1).
        (
            "/api/v2/batch",
            None,
            batch(json!([{
                "type": "person", "action": "page", "identifiers": person,
                "name": "https://example.com/pricing",
                "id": id("ajs-0123456789abcdef0123456789abcdef", 1_714_558_860_000),
                "timestamp": 1_714_558_860,
                "attributes": {"path": "/pricing", "referrer": "https://example.com/",
                               "title": "Pricing", "url": "https://example.com/pricing"}
            }])),
        ),
        // 5. screen.
        (
            "/api/v2/batch",
            None,
            batch(json!([{
                "type": "person", "action": "screen", "identifiers": person, "name": "Dashboard",
                "id": id("5f7e8d9c-0b1a-4c2d-9e3f-4a5b6c7d8e04", 1_714_558_920_000),
                "timestamp": 1_714_558_920, "attributes": {"variation": "dark"}
            }])),
        ),
        // 6. device event: the device, then the event.
        (
            "/api/v2/batch",
            None,
            batch(json!([
                {"type": "person", "action": "add_device", "identifiers": person,
                 "device": {"token": "ff15bc0c20c4aa6cd50854ff165fd265c838e5405bfeb9571066395b8c9da449",
                            "platform": "ios", "last_used": 1_714_558_925}},
                {"type": "person", "action": "event", "identifiers": person,
                 "name": "Device Created or Updated",
                 "id": id("7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c05", 1_714_558_925_000),
                 "timestamp": 1_714_558_925,
                 "attributes": {"device_id": "ff15bc0c20c4aa6cd50854ff165fd265c838e5405bfeb9571066395b8c9da449",
                                "platform": "ios"}}
            ])),
        ),
        // 7. group → object with a relationship to the person.
        (
            "/api/v2/batch",
            None,
            batch(json!([{
                "type": "object", "action": "identify",
                "identifiers": {"object_type_id": "1", "object_id": "acct-77"},
                "attributes": {"name": "Initech", "industry": "Software", "employees": 120},
                "cio_relationships": [{"identifiers": person}]
            }])),
        ),
        // 8. a second, older profile.
        (
            "/api/v2/batch",
            None,
            batch(json!([{
                "type": "person", "action": "identify", "identifiers": {"id": "user-legacy-42"},
                "timestamp": 1_714_559_010,
                "attributes": {"email": "ada.old@example.com", "plan": "free"}
            }])),
        ),
        // 9. alias of two known people → merge.
        (
            "/api/v2/batch",
            None,
            batch(json!([{
                "type": "person", "action": "merge",
                "primary": {"id": USER}, "secondary": {"id": "user-legacy-42"}
            }])),
        ),
        // 10. audience entered (identify form) → manual segment 7.
        (
            "/api/v1/segments/7/add_customers",
            Some("id"),
            json!({"ids": [USER]}),
        ),
        // 11. audience exited (track form) → manual segment 8.
        (
            "/api/v1/segments/8/remove_customers",
            Some("id"),
            json!({"ids": [USER]}),
        ),
        // 12 (line 13; line 12 is a duplicate): an anonymous event.
        (
            "/api/v2/batch",
            None,
            batch(json!([{
                "type": "person", "action": "event", "identifiers": {"anonymous_id": "anon-55e1"},
                "name": "Viewed Demo",
                "id": id("a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c08", 1_714_564_800_000),
                "timestamp": 1_714_564_800, "attributes": {"length_seconds": 93}
            }])),
        ),
    ]
}

async fn run_sample(base_url: &str) -> (Vec<LineReport>, Summary) {
    let mut config = SyncConfig::from_toml_str(EXAMPLE_CONFIG, "example").unwrap();
    config.triggers.dispatcher.linger_ms = Some(5);
    config.triggers.dispatcher.max_attempts = std::num::NonZeroU32::new(1);
    let client = TrackClient::new(
        SiteId::new("site"),
        TrackApiKey::new("key"),
        ClientConfig::new(Region::Us)
            .with_track_base_url(base_url)
            .unwrap(),
    )
    .unwrap();
    let (engine, workers) = SyncBuilder::new(client, config).build().unwrap();
    for worker in workers {
        tokio::spawn(worker);
    }
    let mut reports = Vec::new();
    let mut summary = Summary::default();
    for line in SAMPLE_EVENTS.lines() {
        let report = handle_line(&engine.router, line).await;
        summary.record(&report);
        reports.push(report);
    }
    engine.shutdown().await;
    (reports, summary)
}

fn check_reports(reports: &[LineReport], summary: &Summary) {
    let routes: Vec<&str> = reports
        .iter()
        .map(|r| match r {
            LineReport::Handled { route, .. } => route.as_str(),
            LineReport::Malformed(_) => "malformed",
            _ => "other",
        })
        .collect();
    assert_eq!(
        routes,
        [
            "triggers",
            "onboarding",
            "onboarding",
            "triggers",
            "triggers",
            "triggers",
            "triggers",
            "triggers",
            "triggers",
            "audience",
            "audience",
            "onboarding",
            "triggers",
            "malformed"
        ]
    );
    assert!(
        matches!(
            &reports[11],
            LineReport::Handled { answer: "skipped", detail: Some(why), .. }
                if why.contains("duplicate")
        ),
        "{:?}",
        reports[11]
    );
    assert_eq!(summary.lines, 14);
    assert_eq!(summary.malformed, 1);
    assert_eq!(summary.answers.get("delivered"), Some(&12));
    assert_eq!(summary.answers.get("skipped"), Some(&1));
    assert!(summary.is_finished(), "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_sends_exactly_the_expected_requests() {
    let server = MockServer::start().await;
    for (request_path, id_type, body) in expected() {
        let mut mock = Mock::given(method("POST"))
            .and(path(request_path))
            .and(header("authorization", "Basic c2l0ZTprZXk="))
            .and(body_json(body));
        if let Some(id_type) = id_type {
            mock = mock.and(query_param("id_type", id_type));
        }
        mock.respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
    }
    let (reports, summary) = run_sample(&server.uri()).await;
    check_reports(&reports, &summary);
    server.verify().await;
    assert_eq!(server.received_requests().await.unwrap().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_records_and_prints_each_request_in_order() {
    let sink = RecordingServer::start().await.unwrap();
    let (reports, summary) = run_sample(sink.base_url()).await;
    check_reports(&reports, &summary);
    let recorded = sink.take();
    let expected = expected();
    assert_eq!(recorded.len(), expected.len());
    for (got, (request_path, id_type, body)) in recorded.iter().zip(expected) {
        assert_eq!(got.method, "POST");
        let want_path = match id_type {
            Some(id_type) => format!("{request_path}?id_type={id_type}"),
            None => request_path.to_owned(),
        };
        assert_eq!(got.path, want_path);
        assert_eq!(got.body, body);
        // What the demo prints under each line: method, path and the JSON body.
        assert_eq!(got.to_string(), format!("POST {want_path} {body}"));
    }
    assert!(sink.take().is_empty());
}
