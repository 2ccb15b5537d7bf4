//! `cio-sync serve` with `REDIS_URL` set (feature `redis-tests`: needs `redis-server` on PATH):
//! two servers sharing one Redis behave as one — Segment's retry of a message reaching the
//! other server is not sent to Customer.io again, and an audience change older than one the
//! other server recorded is stale.

mod support;

use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::testing::redis_server::TestRedis;
use cio_sync::serve::ServeOptions;
use serde_json::{Value, json};
use support::{CIO_AUTH, Serving, env_for, expect_batch, serve, track, track_op};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// One server on `redis` under `prefix`, with `extra` configuration, served on port 0 until
/// the test ends.
async fn server(redis: &TestRedis, cio: &MockServer, prefix: &str, extra: &str) -> Serving {
    let env = env_for(cio, &[("REDIS_URL", redis.url().to_owned())]);
    let config = SyncConfig::from_toml_str(
        &format!(
            "[triggers.dispatcher]\nlinger_ms = 10\nmax_attempts = 1\n\n\
             [server]\nredis_prefix = \"{prefix}\"\n\n{extra}"
        ),
        "test",
    )
    .unwrap();
    serve(env, config, ServeOptions::default()).await
}

/// POSTs `body` to `/segment` of `server`; the status.
async fn post(server: &Serving, body: &Value) -> u16 {
    support::post(&server.base, "/segment", body.to_string().as_bytes(), &[])
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_redis_send_a_retried_message_once() {
    let redis = TestRedis::start().await;
    let prefix = format!("{}serve:", redis.config().prefix());
    let cio = MockServer::start().await;
    expect_batch(&cio, json!([track_op("m-1", "u-1")])).await;
    let first = server(&redis, &cio, &prefix, "").await;
    let second = server(&redis, &cio, &prefix, "").await;

    let track = track("m-1", "u-1");
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
