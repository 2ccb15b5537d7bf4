//! `cio-sync serve` with `REDIS_URL` set (feature `redis-tests`: needs `redis-server` on PATH):
//! two servers sharing one Redis behave as one — Segment's retry of a message reaching the
//! other server is not sent to Customer.io again, and an audience change older than one the
//! other server recorded is stale.

use std::collections::HashMap;

use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::event_id::event_id;
use cio_segment_sync::testing::redis_server::TestRedis;
use cio_sync::env::Env;
use cio_sync::serve::{ServeOptions, Server};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `Basic base64("site:key")`.
const CIO_AUTH: &str = "Basic c2l0ZTprZXk=";
const AT: &str = "2024-05-01T10:15:30.123Z";
const AT_MS: i64 = 1_714_558_530_123;

/// One server on `redis` under `prefix`, with `extra` configuration, served on port 0.
/// Returns its URL; the server runs until the test's runtime ends.
async fn server(redis: &TestRedis, cio: &MockServer, prefix: &str, extra: &str) -> String {
    let vars = HashMap::from([
        ("CIO_SITE_ID", "site".to_owned()),
        ("CIO_API_KEY", "key".to_owned()),
        ("CIO_TRACK_URL", cio.uri()),
        ("REDIS_URL", redis.url().to_owned()),
    ]);
    let env = Env::from_lookup(|name| vars.get(name).cloned()).unwrap();
    let config = SyncConfig::from_toml_str(
        &format!(
            "[triggers.dispatcher]\nlinger_ms = 10\nmax_attempts = 1\n\n\
             [server]\nredis_prefix = \"{prefix}\"\n\n{extra}"
        ),
        "test",
    )
    .unwrap();
    let server = Server::build(env, config, ServeOptions::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server.run(listener, std::future::pending()));
    base
}

async fn post(base: &str, body: &Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/segment"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_redis_send_a_retried_message_once() {
    let redis = TestRedis::start().await;
    let prefix = format!("{}serve:", redis.config().prefix());
    let cio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
        .and(body_json(json!({"batch": [{
            "type": "person", "action": "event", "identifiers": {"id": "u-1"},
            "name": "Order Completed", "id": event_id("m-1", AT_MS).to_string(),
            "timestamp": AT_MS / 1000, "attributes": {"total": 30}
        }]})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&cio)
        .await;
    let first = server(&redis, &cio, &prefix, "").await;
    let second = server(&redis, &cio, &prefix, "").await;

    let track = json!({
        "type": "track", "messageId": "m-1", "userId": "u-1", "event": "Order Completed",
        "timestamp": AT, "properties": {"total": 30}
    });
    assert_eq!(post(&first, &track).await, 200);
    // Segment's retry lands on the other server: the shared dedupe store knows it is done.
    assert_eq!(post(&second, &track).await, 200);
    cio.verify().await;
    assert_eq!(cio.received_requests().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_memberships_are_shared_so_an_older_change_on_another_server_is_stale() {
    let redis = TestRedis::start().await;
    let prefix = format!("{}audience:", redis.config().prefix());
    let cio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/segments/7/add_customers"))
        .and(query_param("id_type", "id"))
        .and(header("authorization", CIO_AUTH))
        .and(body_json(json!({"ids": ["u-1"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&cio)
        .await;
    let vip = "[audience.segments]\nvip = 7\n";
    let first = server(&redis, &cio, &prefix, vip).await;
    let second = server(&redis, &cio, &prefix, vip).await;
    let change = |message_id: &str, event: &str, timestamp: &str, member: bool| {
        json!({"type": "track", "messageId": message_id, "userId": "u-1", "event": event,
               "timestamp": timestamp, "properties": {"audience_key": "vip", "vip": member},
               "context": {"personas": {"computation_class": "audience",
                                        "computation_key": "vip"}}})
    };
    let entered = change("a-2", "Audience Entered", "2024-05-02T00:00:00Z", true);
    assert_eq!(post(&first, &entered).await, 200);
    // The exit is older than the entry the other server recorded: stale, nothing sent.
    let exited = change("a-1", "Audience Exited", "2024-05-01T00:00:00Z", false);
    assert_eq!(post(&second, &exited).await, 200);
    cio.verify().await;
    assert_eq!(cio.received_requests().await.unwrap().len(), 1);
}
