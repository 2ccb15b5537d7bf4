//! What the `serve*` suites share: an environment pointing at a mock Customer.io, a built
//! [`Server`] served on `127.0.0.1:0` and stopped gracefully, requests to its routes, and the
//! track event most tests send with the exact operation Customer.io must receive for it.

#![allow(dead_code)] // Each suite uses a different part.

use std::collections::HashMap;

use cio_segment_sync::config::SyncConfig;
use cio_segment_sync::customerio_client::event_id::event_id;
use cio_sync::env::Env;
use cio_sync::serve::{ServeOptions, Server};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

/// `Basic base64("site:key")`: the Track credentials of [`env_for`].
pub(crate) const CIO_AUTH: &str = "Basic c2l0ZTprZXk=";
/// The timestamp of [`track`], as Segment sends it, in milliseconds and in seconds.
pub(crate) const AT: &str = "2024-05-01T10:15:30.123Z";
pub(crate) const AT_MS: i64 = 1_714_558_530_123;
pub(crate) const AT_S: i64 = AT_MS / 1000;

/// The environment of exactly `vars`.
pub(crate) fn env(vars: &[(&str, String)]) -> Env {
    let vars: HashMap<&str, String> = vars.iter().cloned().collect();
    Env::from_lookup(|name| vars.get(name).cloned()).unwrap()
}

/// Track credentials `site` / `key` with the Track API at `cio`, and `more` (which wins).
pub(crate) fn env_for(cio: &MockServer, more: &[(&str, String)]) -> Env {
    let mut vars = vec![
        ("CIO_SITE_ID", "site".to_owned()),
        ("CIO_API_KEY", "key".to_owned()),
        ("CIO_TRACK_URL", cio.uri()),
    ];
    vars.extend(more.iter().cloned());
    env(&vars)
}

/// A server running on a port of its own until [`Serving::stop`] (or until dropped, which
/// starts the same graceful shutdown without waiting for it).
#[derive(Debug)]
pub(crate) struct Serving {
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Serves `server` on `127.0.0.1:0`.
pub(crate) async fn start(server: Server) -> Serving {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async move {
        let _ = stopped.await;
    }));
    Serving { base, stop, task }
}

/// Builds the server of `env`, `config` and `options` (failing the test if it cannot be built)
/// and serves it on `127.0.0.1:0`.
pub(crate) async fn serve(env: Env, config: SyncConfig, options: ServeOptions) -> Serving {
    match Server::build(env, config, options).await {
        Ok(server) => start(server).await,
        Err(error) => panic!(
            "the server cannot be built: {}",
            cio_sync::error_chain(&error)
        ),
    }
}

impl Serving {
    /// Asks for the graceful shutdown and waits until the server has finished the requests in
    /// flight and flushed its dispatchers; fails the test if serving failed or had already
    /// ended.
    pub(crate) async fn stop(self) {
        self.stop
            .send(())
            .expect("the server was still running when asked to stop");
        self.task.await.unwrap().unwrap();
    }
}

/// POSTs `body` as JSON to `route` with `headers`; the status and the answer (`Null` when it
/// is not JSON).
pub(crate) async fn post(
    base: &str,
    route: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{route}"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The body of `GET /`.
pub(crate) async fn status_page(base: &str) -> String {
    reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A mock of `POST /api/v2/batch` carrying the Track credentials of [`env_for`].
pub(crate) fn cio_batch() -> MockBuilder {
    Mock::given(method("POST"))
        .and(path("/api/v2/batch"))
        .and(header("authorization", CIO_AUTH))
}

/// Expects exactly one `POST /api/v2/batch` (with the credentials of [`env_for`]) whose body
/// is `{"batch": operations}`, and answers it `200`.
pub(crate) async fn expect_batch(cio: &MockServer, operations: Value) {
    cio_batch()
        .and(body_json(json!({ "batch": operations })))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(cio)
        .await;
}

/// An `Order Completed` track of `user` at [`AT`].
pub(crate) fn track(message_id: &str, user: &str) -> Value {
    json!({"type": "track", "messageId": message_id, "userId": user, "event": "Order Completed",
           "timestamp": AT, "properties": {"total": 30}})
}

/// The one operation Customer.io receives for [`track`].
pub(crate) fn track_op(message_id: &str, user: &str) -> Value {
    json!({"type": "person", "action": "event", "identifiers": {"id": user},
           "name": "Order Completed", "id": event_id(message_id, AT_MS).to_string(),
           "timestamp": AT_S, "attributes": {"total": 30}})
}
