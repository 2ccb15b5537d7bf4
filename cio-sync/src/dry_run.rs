//! The dry-run sink: a tiny HTTP server on `127.0.0.1:0` that records every request and answers
//! `200 OK` with an empty body.
//!
//! Pointing the real Customer.io client at it (`ClientConfig::with_track_base_url`) shows the
//! exact requests the client would send — method, path and JSON body — without credentials and
//! without touching Customer.io.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let sink = cio_sync::dry_run::DrySink::start().await?;
//! assert!(sink.base_url().starts_with("http://127.0.0.1:"));
//! assert!(sink.take().is_empty());
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use serde_json::Value;

/// One request the sink received.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The HTTP method.
    pub method: String,
    /// The path, with the query string when there is one.
    pub path: String,
    /// The body as JSON (`Value::Null` for an empty body, a string for a body that is not JSON).
    pub body: Value,
}

impl fmt::Display for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if !self.body.is_null() {
            write!(f, " {}", self.body)?;
        }
        Ok(())
    }
}

type Log = Arc<Mutex<Vec<Recorded>>>;

/// A running recording server. It stops when the sink is dropped.
pub struct DrySink {
    base_url: String,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for DrySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrySink")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl DrySink {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let log: Log = Arc::default();
        let recorder = log.clone();
        let router = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let recorder = recorder.clone();
            async move {
                let body = if body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&body).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&body).into_owned())
                    })
                };
                let path = uri
                    .path_and_query()
                    .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
                recorder
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Recorded {
                        method: method.to_string(),
                        path,
                        body,
                    });
                StatusCode::OK
            }
        });
        let task = tokio::spawn(async move {
            // The server only ends when the task is aborted (the sink dropped) or the socket
            // fails; either way the dry run has nothing more to record.
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            base_url: format!("http://{address}"),
            log,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`: the base URL to give the client.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The requests received since the last call, in arrival order.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for DrySink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
