//! Starting the `webhook_server` example's router for the example_server* tests.

#![allow(dead_code, unreachable_pub)] // Each test crate uses a different part.

use std::sync::Arc;

use examples::server::settings::Settings;
use examples::server::{ServerState, router};

/// Builds the state from `settings` as the binary does, spawns the dispatchers' workers and
/// serves the router on `127.0.0.1:0`. Returns the base URL and the state.
pub async fn serve(settings: Settings) -> (String, Arc<ServerState>) {
    let (state, workers) = settings.build().await.unwrap();
    for worker in workers {
        tokio::spawn(worker);
    }
    let state = Arc::new(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, state)
}
