//! A throwaway `redis-server` for tests (features `testing` + `redis`).
//!
//! [`TestRedis::start`] runs `redis-server` from `PATH` listening only on a unix socket in a
//! fresh temporary directory (`--port 0`: no TCP port, so no port races), without persistence.
//! The process is killed when the value drops. When `CIO_SYNC_TEST_REDIS_URL` is set, that
//! server is used instead and nothing is started. Either way every [`TestRedis`] hands out a
//! unique key prefix, so tests never see each other's keys and nothing is ever flushed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::redis::{RedisConfig, RedisConnection};

/// Environment variable naming an existing Redis to test against.
pub const TEST_REDIS_URL_VAR: &str = "CIO_SYNC_TEST_REDIS_URL";

/// A Redis server for one test.
#[derive(Debug)]
pub struct TestRedis {
    url: String,
    prefix: String,
    server: Option<Server>,
}

#[derive(Debug)]
struct Server {
    dir: PathBuf,
    child: Option<Child>,
}

impl TestRedis {
    /// Starts a server (or uses `CIO_SYNC_TEST_REDIS_URL`). Panics with a clear message when
    /// `redis-server` is not on `PATH`: the Redis suites are behind the `redis` feature
    /// precisely so that they need it.
    pub async fn start() -> Self {
        let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
        if let Ok(url) = std::env::var(TEST_REDIS_URL_VAR) {
            return Self {
                url,
                prefix,
                server: None,
            };
        }
        let dir =
            std::env::temp_dir().join(format!("cio-sync-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory for redis-server");
        let mut server = Server { dir, child: None };
        server.spawn();
        let url = format!("unix://{}", server.socket().display());
        let this = Self {
            url,
            prefix,
            server: Some(server),
        };
        this.wait_ready().await;
        this
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A config for this server under this test's unique prefix, with a short operation
    /// timeout so an unavailable server fails fast.
    pub fn config(&self) -> RedisConfig {
        RedisConfig::new(self.url.clone())
            .with_prefix(self.prefix.clone())
            .with_op_timeout(Duration::from_millis(500))
    }

    /// A new connection (each call opens its own, as separate workers would).
    pub async fn connect(&self) -> RedisConnection {
        self.config()
            .connect()
            .await
            .expect("connect to the test redis-server")
    }

    /// Kills the server (a started one only; panics for `CIO_SYNC_TEST_REDIS_URL`).
    pub fn kill(&mut self) {
        let server = self.server.as_mut().expect("cannot kill an external Redis");
        server.kill();
    }

    /// Starts the server again on the same socket after [`kill`](Self::kill). Its data is
    /// gone (no persistence), as after a real crash without AOF.
    pub async fn restart(&mut self) {
        let server = self
            .server
            .as_mut()
            .expect("cannot restart an external Redis");
        server.spawn();
        self.wait_ready().await;
    }

    async fn wait_ready(&self) {
        let client = redis::Client::open(self.url.as_str()).expect("valid redis URL");
        for _ in 0..500 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut conn).await;
                if pong.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("redis-server did not become ready");
    }
}

impl Server {
    fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("could not start redis-server from PATH ({err}); install it or set {TEST_REDIS_URL_VAR}")
            });
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = remove_dir(&self.dir);
    }
}

fn remove_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::remove_dir_all(dir)
}
