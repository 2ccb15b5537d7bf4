//! [`RecordingServer`]: a local HTTP server that writes down every request it receives and
//! answers from a script (feature `testing`).
//!
//! Give its [`base_url`](RecordingServer::base_url) to a client in place of the vendor's
//! (`ClientConfig::with_track_base_url` for Customer.io) and the server shows the exact requests
//! the client sends — method, path with query, headers and body — without credentials and
//! without reaching the vendor. That is what `cio-sync --dry-run` and `cio-sync demo` do.
//!
//! By default every request is answered `200 OK` with an empty body. A test stages other
//! answers with [`script`](RecordingServer::script): scripted replies are used one per request,
//! in arrival order, and once the queue is empty the default reply
//! ([`set_default`](RecordingServer::set_default)) answers the rest. A `207` refusing one
//! operation, a `503` and then a `200`, a `429` with `Retry-After`, or a reply slower than the
//! client's timeout are each one line of set-up.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cio_segment_sync::testing::{RecordingServer, ScriptedReply};
//!
//! let server = RecordingServer::start().await?;
//! assert!(server.base_url().starts_with("http://127.0.0.1:"));
//! // The first request is refused as if Customer.io were down; later ones get the default 200.
//! server.script(ScriptedReply::new(503).header("retry-after", "1"))?;
//! assert_eq!(server.pending_replies(), 1);
//! assert!(server.take().is_empty());
//! # Ok(()) }
//! ```
//!
//! The server speaks HTTP/1.1 (with keep-alive) on `127.0.0.1`, on a port the system picks. It
//! runs on the tokio runtime [`start`](RecordingServer::start) is called on, like a mock server
//! in a test, and stops — closing every open connection — when the value is dropped.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Headers whose values are replaced by `<redacted>` in `Debug` and `Display`: they carry
/// credentials (the Customer.io and Segment keys travel in `Authorization`).
const REDACTED_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// What a redacted header value prints as.
const REDACTED: &str = "<redacted>";

fn is_redacted(name: &str) -> bool {
    REDACTED_HEADERS
        .iter()
        .any(|redacted| name.eq_ignore_ascii_case(redacted))
}

/// The headers of one recorded request, in the order they arrived, names in lower case.
///
/// The values are kept as sent (a test can check the exact `Authorization` a client used), but
/// `Debug` and `Display` print `authorization`, `proxy-authorization` and `cookie` as
/// `<redacted>`, so a failing assertion or a dry-run log does not show a key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RecordedHeaders(Vec<(String, String)>);

impl RecordedHeaders {
    fn from_map(map: &HeaderMap) -> Self {
        Self(
            map.iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        )
    }

    /// The first value of header `name` (any case), if the request carried it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(have, _)| have.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every value of header `name` (any case), in arrival order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(have, _)| have.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every `(name, value)` pair, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// How many header lines the request carried.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the request carried no header at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs with secret values replaced, for printing.
    fn printable(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter().map(|(name, value)| {
            if is_redacted(name) {
                (name, REDACTED)
            } else {
                (name, value)
            }
        })
    }
}

impl fmt::Debug for RecordedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.printable()).finish()
    }
}

/// One `name: value` line per header, secrets redacted.
impl fmt::Display for RecordedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (name, value)) in self.printable().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{name}: {value}")?;
        }
        Ok(())
    }
}

/// One request the server received.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The HTTP method, such as `POST`.
    pub method: String,
    /// The path, with the query string when there is one (`/api/v1/entity?id_type=email`).
    pub path: String,
    /// The request's headers.
    pub headers: RecordedHeaders,
    /// The body as JSON: `Value::Null` for an empty body, a JSON string holding the text (lossy
    /// UTF-8) for a body that is not JSON.
    pub body: Value,
}

impl RecordedRequest {
    fn new(method: &hyper::Method, uri: &hyper::Uri, headers: &HeaderMap, body: &[u8]) -> Self {
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
        Self {
            method: method.as_str().to_owned(),
            path,
            headers: RecordedHeaders::from_map(headers),
            body,
        }
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .finish()
    }
}

/// `POST /api/v2/batch {"batch":[…]}`: method, path and the body as compact JSON (no body, no
/// third part). The alternate form (`{:#}`) puts the headers, secrets redacted, on the lines
/// after the request line and the body after a blank line, like the request on the wire.
impl fmt::Display for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if f.alternate() {
            if !self.headers.is_empty() {
                write!(f, "\n{}", self.headers)?;
            }
            if !self.body.is_null() {
                write!(f, "\n\n{}", self.body)?;
            }
        } else if !self.body.is_null() {
            write!(f, " {}", self.body)?;
        }
        Ok(())
    }
}

/// An answer to stage on a [`RecordingServer`]: a status, headers, a body and an optional
/// delay before answering. Built without checks; [`RecordingServer::script`] and
/// [`RecordingServer::set_default`] check it and say what is wrong.
///
/// ```
/// use std::time::Duration;
/// use cio_segment_sync::testing::ScriptedReply;
/// use serde_json::json;
///
/// // Customer.io refusing the second operation of a batch.
/// let partial = ScriptedReply::new(207).json(&json!({
///     "errors": [{"batch_index": 1, "reason": "invalid", "field": "name", "message": "bad"}]
/// }));
/// // Throttled, with the delay the client must honour.
/// let throttled = ScriptedReply::new(429).header("retry-after", "2");
/// // An answer that comes after the client gave up.
/// let slow = ScriptedReply::ok().delay(Duration::from_secs(5));
/// # let _ = (partial, throttled, slow);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
    delay: Duration,
}

impl ScriptedReply {
    /// Answers `status` with no header of its own and an empty body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            delay: Duration::ZERO,
        }
    }

    /// `200 OK` with an empty body: the server's default answer.
    pub fn ok() -> Self {
        Self::new(200)
    }

    /// Adds a header line (a second call with the same name adds a second line).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body to these bytes as they are.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON and the `content-type` to `application/json`
    /// (replacing a `content-type` set before).
    pub fn json(mut self, value: &Value) -> Self {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case(CONTENT_TYPE.as_str()));
        self.headers.push((
            CONTENT_TYPE.as_str().to_owned(),
            "application/json".to_owned(),
        ));
        self.body = Bytes::from(value.to_string());
        self
    }

    /// Waits `delay` after reading the request before answering (the request is recorded
    /// before the wait). Longer than a client's timeout, it stages a reply that comes too late.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Checks the status and headers and builds what the server sends.
    fn prepare(self) -> Result<Prepared, InvalidReply> {
        let status = StatusCode::from_u16(self.status).map_err(|_| InvalidReply::Status {
            status: self.status,
        })?;
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in self.headers {
            let parsed = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| InvalidReply::HeaderName { name: name.clone() })?;
            let value = HeaderValue::from_str(&value)
                .map_err(|_| InvalidReply::HeaderValue { name: name.clone() })?;
            headers.append(parsed, value);
        }
        Ok(Prepared {
            status,
            headers,
            body: self.body,
            delay: self.delay,
        })
    }
}

impl Default for ScriptedReply {
    fn default() -> Self {
        Self::ok()
    }
}

/// A [`ScriptedReply`] the server cannot send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReply {
    /// The status is outside `100..=999`.
    #[error("scripted reply: status {status} is not an HTTP status (100 to 999)")]
    Status {
        /// The status given.
        status: u16,
    },
    /// A header name holds a character HTTP does not allow in one.
    #[error("scripted reply: {name:?} is not a valid HTTP header name")]
    HeaderName {
        /// The name given.
        name: String,
    },
    /// A header value holds a control character (such as a line break).
    #[error("scripted reply: the value of header {name:?} is not a valid HTTP header value")]
    HeaderValue {
        /// The name of the header whose value was refused (the value is not repeated: it may
        /// be a secret).
        name: String,
    },
}

/// A checked reply, ready to send as often as needed.
#[derive(Debug, Clone)]
struct Prepared {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    delay: Duration,
}

impl Prepared {
    fn response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

#[derive(Debug)]
struct State {
    log: Vec<RecordedRequest>,
    script: VecDeque<Prepared>,
    default: Prepared,
}

#[derive(Debug)]
struct Shared(Mutex<State>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A connection task that panicked must not hide what was recorded.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `request` and picks its reply, under one lock so that the order of the log is
    /// the order the script is used in.
    fn record(&self, request: RecordedRequest) -> Prepared {
        let mut state = self.lock();
        state.log.push(request);
        match state.script.pop_front() {
            Some(reply) => reply,
            None => state.default.clone(),
        }
    }
}

/// A running recording server on `127.0.0.1`; it stops when dropped. See the
/// [module documentation](self).
pub struct RecordingServer {
    address: SocketAddr,
    base_url: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl fmt::Debug for RecordingServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingServer")
            .field("base_url", &self.base_url)
            .field("pending_replies", &self.pending_replies())
            .finish_non_exhaustive()
    }
}

impl RecordingServer {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime until dropped, answering
    /// `200 OK` with an empty body until told otherwise.
    ///
    /// # Errors
    ///
    /// The socket could not be bound.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared(Mutex::new(State {
            log: Vec::new(),
            script: VecDeque::new(),
            default: Prepared {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body: Bytes::new(),
                delay: Duration::ZERO,
            },
        })));
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self {
            address,
            base_url: format!("http://{address}"),
            shared,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`: the base URL to give the client.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The requests received since the last call, in arrival order.
    pub fn take(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut self.shared.lock().log)
    }

    /// Queues `reply` for the first request that comes after the replies queued before it.
    ///
    /// # Errors
    ///
    /// [`InvalidReply`] naming the status or header that cannot be sent; nothing is queued.
    pub fn script(&self, reply: ScriptedReply) -> Result<(), InvalidReply> {
        let prepared = reply.prepare()?;
        self.shared.lock().script.push_back(prepared);
        Ok(())
    }

    /// Answers with `reply` once the queue of scripted replies is empty (initially `200 OK`
    /// with an empty body).
    ///
    /// # Errors
    ///
    /// [`InvalidReply`] naming the status or header that cannot be sent; the default is
    /// unchanged.
    pub fn set_default(&self, reply: ScriptedReply) -> Result<(), InvalidReply> {
        let prepared = reply.prepare()?;
        self.shared.lock().default = prepared;
        Ok(())
    }

    /// How many scripted replies have not been used yet: `0` once every staged answer went
    /// out.
    pub fn pending_replies(&self) -> usize {
        self.shared.lock().script.len()
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its `JoinSet`, which aborts every connection.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, shared.clone()));
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow with every one served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let service = service_fn(move |request: Request<Incoming>| {
        let shared = shared.clone();
        async move {
            let (parts, body) = request.into_parts();
            // A client that goes away mid-body sent no request to record: the error closes
            // the connection.
            let body = body.collect().await?.to_bytes();
            let recorded = RecordedRequest::new(&parts.method, &parts.uri, &parts.headers, &body);
            let reply = shared.record(recorded);
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            Ok::<_, hyper::Error>(reply.response())
        }
    });
    // The connection ends when the client closes it or breaks the protocol; either way there is
    // nothing more to record from it.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AUTH: &str = "Basic c2l0ZTprZXk=";

    fn client() -> reqwest::Client {
        reqwest::Client::new()
    }

    #[test]
    fn the_server_and_its_start_future_are_send() {
        fn send_sync<T: Send + Sync>() {}
        fn send<F: std::future::Future + Send>(_: F) {}
        send_sync::<RecordingServer>();
        send_sync::<RecordedRequest>();
        send(RecordingServer::start());
    }

    #[tokio::test]
    async fn records_method_path_query_headers_and_json_body_and_answers_200() {
        let server = RecordingServer::start().await.unwrap();
        assert_eq!(server.base_url(), format!("http://{}", server.address()));
        let response = client()
            .post(format!("{}/api/v1/entity?id_type=email", server.base_url()))
            .header("authorization", AUTH)
            .header("x-trace", "one")
            .header("x-trace", "two")
            .json(&json!({"type": "person", "identifiers": {"id": "u-1"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "");

        let recorded = server.take();
        assert_eq!(recorded.len(), 1);
        let request = &recorded[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/api/v1/entity?id_type=email");
        assert_eq!(
            request.body,
            json!({"type": "person", "identifiers": {"id": "u-1"}})
        );
        assert_eq!(request.headers.get("authorization"), Some(AUTH));
        assert_eq!(request.headers.get("Authorization"), Some(AUTH));
        assert_eq!(
            request.headers.get("content-type"),
            Some("application/json")
        );
        assert_eq!(
            request.headers.get_all("x-trace").collect::<Vec<_>>(),
            ["one", "two"]
        );
        assert_eq!(request.headers.get("x-missing"), None);
        assert!(
            request
                .headers
                .iter()
                .all(|(name, _)| name == name.to_lowercase())
        );
        assert!(server.take().is_empty(), "take empties the log");
    }

    #[tokio::test]
    async fn an_empty_body_is_null_and_text_is_a_json_string() {
        let server = RecordingServer::start().await.unwrap();
        let http = client();
        http.get(format!("{}/healthz", server.base_url()))
            .send()
            .await
            .unwrap();
        http.put(format!("{}/raw", server.base_url()))
            .body("not json {")
            .send()
            .await
            .unwrap();
        let recorded = server.take();
        assert_eq!(recorded.len(), 2);
        assert_eq!(
            (recorded[0].method.as_str(), recorded[0].path.as_str()),
            ("GET", "/healthz")
        );
        assert_eq!(recorded[0].body, Value::Null);
        assert_eq!(recorded[1].method, "PUT");
        assert_eq!(recorded[1].body, Value::String("not json {".to_owned()));
    }

    #[tokio::test]
    async fn display_and_debug_show_the_request_but_not_the_credentials() {
        let server = RecordingServer::start().await.unwrap();
        let http = client();
        http.post(format!("{}/api/v2/batch", server.base_url()))
            .header("authorization", AUTH)
            .header("cookie", "session=secret-cookie")
            .json(&json!({"batch": [1]}))
            .send()
            .await
            .unwrap();
        http.delete(format!("{}/gone", server.base_url()))
            .send()
            .await
            .unwrap();
        let recorded = server.take();
        assert_eq!(
            recorded[0].to_string(),
            r#"POST /api/v2/batch {"batch":[1]}"#
        );
        assert_eq!(recorded[1].to_string(), "DELETE /gone");

        let long = format!("{:#}", recorded[0]);
        assert!(long.starts_with("POST /api/v2/batch\n"), "{long}");
        assert!(long.contains("\nauthorization: <redacted>\n"), "{long}");
        assert!(long.contains("\ncookie: <redacted>\n"), "{long}");
        assert!(
            long.contains("\ncontent-type: application/json\n"),
            "{long}"
        );
        assert!(long.ends_with("\n\n{\"batch\":[1]}"), "{long}");
        let debug = format!("{:?}", recorded[0]);
        assert!(
            debug.contains(r#"("authorization", "<redacted>")"#),
            "{debug}"
        );
        for printed in [long, debug, recorded[0].headers.to_string()] {
            assert!(!printed.contains("c2l0ZTprZXk"), "{printed}");
            assert!(!printed.contains("secret-cookie"), "{printed}");
        }
        assert_eq!(
            recorded[0].headers.get("cookie"),
            Some("session=secret-cookie")
        );
    }

    #[tokio::test]
    async fn scripted_replies_answer_in_order_then_the_default() {
        let server = RecordingServer::start().await.unwrap();
        server
            .script(ScriptedReply::new(503).header("retry-after", "1"))
            .unwrap();
        server
            .script(ScriptedReply::new(207).json(&json!({
                "errors": [{"batch_index": 0, "reason": "invalid"}]
            })))
            .unwrap();
        assert_eq!(server.pending_replies(), 2);
        let http = client();
        let send = |n: u32| {
            http.post(format!("{}/attempt/{n}", server.base_url()))
                .body("{}")
                .send()
        };

        let first = send(1).await.unwrap();
        assert_eq!(first.status(), 503);
        assert_eq!(first.headers()["retry-after"], "1");
        assert_eq!(first.text().await.unwrap(), "");
        assert_eq!(server.pending_replies(), 1);

        let second = send(2).await.unwrap();
        assert_eq!(second.status(), 207);
        assert_eq!(second.headers()["content-type"], "application/json");
        assert_eq!(
            second.json::<Value>().await.unwrap(),
            json!({"errors": [{"batch_index": 0, "reason": "invalid"}]})
        );
        assert_eq!(server.pending_replies(), 0);

        let third = send(3).await.unwrap();
        assert_eq!(third.status(), 200);
        assert!(third.headers().get("retry-after").is_none());

        server
            .set_default(ScriptedReply::new(202).body("queued"))
            .unwrap();
        let fourth = send(4).await.unwrap();
        assert_eq!(fourth.status(), 202);
        assert_eq!(fourth.text().await.unwrap(), "queued");
        let fifth = send(5).await.unwrap();
        assert_eq!(fifth.status(), 202, "the default answers every request");

        let paths: Vec<String> = server.take().into_iter().map(|r| r.path).collect();
        assert_eq!(
            paths,
            [
                "/attempt/1",
                "/attempt/2",
                "/attempt/3",
                "/attempt/4",
                "/attempt/5"
            ]
        );
    }

    #[test]
    fn json_replaces_a_content_type_set_before() {
        let reply = ScriptedReply::new(200)
            .header("Content-Type", "text/plain")
            .header("x-kept", "yes")
            .json(&json!({"ok": true}))
            .prepare()
            .unwrap();
        assert_eq!(
            reply
                .headers
                .get_all(CONTENT_TYPE)
                .iter()
                .collect::<Vec<_>>(),
            ["application/json"]
        );
        assert_eq!(reply.headers["x-kept"], "yes");
        assert_eq!(reply.body, Bytes::from_static(br#"{"ok":true}"#));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_each_use_one_scripted_reply() {
        let server = RecordingServer::start().await.unwrap();
        for status in [500, 502, 503, 429, 400] {
            server.script(ScriptedReply::new(status)).unwrap();
        }
        let http = client();
        let requests = (0..8).map(|n| {
            http.post(format!("{}/r/{n}", server.base_url()))
                .body("{}")
                .send()
        });
        let mut statuses: Vec<u16> = futures::future::join_all(requests)
            .await
            .into_iter()
            .map(|response| response.unwrap().status().as_u16())
            .collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 200, 200, 400, 429, 500, 502, 503]);
        assert_eq!(server.pending_replies(), 0);
        assert_eq!(server.take().len(), 8);
    }

    #[tokio::test]
    async fn a_delayed_reply_outlasts_the_client_timeout_but_the_request_is_recorded() {
        let server = RecordingServer::start().await.unwrap();
        server
            .script(ScriptedReply::ok().delay(Duration::from_secs(30)))
            .unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let late = http
            .post(format!("{}/slow", server.base_url()))
            .body("{}")
            .send()
            .await
            .unwrap_err();
        assert!(late.is_timeout(), "{late:?}");
        // The next request is not held up by the one still waiting.
        let next = http
            .post(format!("{}/fast", server.base_url()))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(next.status(), 200);
        let paths: Vec<String> = server.take().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/slow", "/fast"]);
    }

    #[tokio::test]
    async fn invalid_replies_are_refused_by_name_and_change_nothing() {
        let server = RecordingServer::start().await.unwrap();
        assert_eq!(
            server.script(ScriptedReply::new(42)),
            Err(InvalidReply::Status { status: 42 })
        );
        assert_eq!(
            server.script(ScriptedReply::ok().header("bad name", "v")),
            Err(InvalidReply::HeaderName {
                name: "bad name".to_owned()
            })
        );
        let error = server
            .set_default(ScriptedReply::new(500).header("x-key", "secret\nvalue"))
            .unwrap_err();
        assert_eq!(
            error,
            InvalidReply::HeaderValue {
                name: "x-key".to_owned()
            }
        );
        assert!(error.to_string().contains("\"x-key\""), "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
        assert_eq!(
            InvalidReply::Status { status: 42 }.to_string(),
            "scripted reply: status 42 is not an HTTP status (100 to 999)"
        );
        assert_eq!(server.pending_replies(), 0);
        let response = client().get(server.base_url()).send().await.unwrap();
        assert_eq!(response.status(), 200, "the default is unchanged");
    }

    #[tokio::test]
    async fn dropping_the_server_closes_its_port() {
        let server = RecordingServer::start().await.unwrap();
        let address = server.address();
        tokio::net::TcpStream::connect(address).await.unwrap();
        drop(server);
        // The abort takes effect when the runtime next drops the task: poll until refused.
        let mut refused = false;
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(address).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "the port still accepts connections after the drop");
    }
}
