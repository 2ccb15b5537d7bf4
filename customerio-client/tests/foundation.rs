//! The shared transport, end to end against a mock server: auth, paths, error mapping.

use customerio_client::{
    ClientConfig, ErrorKind, Identifier, Phase, Region, SiteId, TrackApiKey, TrackClient,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> TrackClient {
    let config = ClientConfig::new(Region::Eu)
        .with_track_base_url(&server.uri())
        .unwrap();
    TrackClient::new(SiteId::new("site"), TrackApiKey::new("key"), config).unwrap()
}

#[tokio::test]
async fn identify_sends_basic_auth_encoded_path_and_body() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/api/v1/customers/ada%40example.com"))
        // printf 'site:key' | base64 → c2l0ZTprZXk=
        .and(header("authorization", "Basic c2l0ZTprZXk="))
        .and(header("content-type", "application/json"))
        .and(header(
            "user-agent",
            concat!("customerio-client/", env!("CARGO_PKG_VERSION")),
        ))
        .and(body_json(json!({"plan": "pro", "_timestamp": 1717171800})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let attrs = json!({"plan": "pro", "_timestamp": 1717171800})
        .as_object()
        .cloned()
        .unwrap();
    client(&server)
        .identify(&Identifier::email("ada@example.com"), &attrs)
        .await
        .unwrap();
}

#[tokio::test]
async fn error_statuses_are_classified_with_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/accounts/region"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).account_region().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.phase(), Phase::ResponseReceived);
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(3)));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn region_lookup_decodes_and_401_is_auth() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/accounts/region"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"url": "https://track-eu.customer.io", "region": "eu", "environment_id": 42}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let region = client(&server).account_region().await.unwrap();
    assert_eq!(region.region, "eu");
    assert_eq!(region.environment_id, 42);

    let denied = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&denied)
        .await;
    let err = client(&denied).account_region().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn phone_in_v1_path_is_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let err = client(&server)
        .identify(&Identifier::phone("+14155550100"), &serde_json::Map::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(err.phase(), Phase::NotSent);
}

#[tokio::test]
async fn connection_refused_is_transient_and_not_sent() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(&format!("http://127.0.0.1:{port}"))
        .unwrap();
    let client = TrackClient::new(SiteId::new("s"), TrackApiKey::new("k"), config).unwrap();
    let err = client.account_region().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.phase(), Phase::NotSent);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_body_cut_off_after_the_status_line_is_transient_and_maybe_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Answers 200 promising 100 bytes, sends 10, and closes: the status arrived, the body broke.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0_u8; 4096];
        let _ = socket.read(&mut request).await.unwrap();
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"region\":")
            .await
            .unwrap();
        socket.shutdown().await.unwrap();
    });
    let config = ClientConfig::new(Region::Us)
        .with_track_base_url(&format!("http://127.0.0.1:{port}"))
        .unwrap();
    let client = TrackClient::new(SiteId::new("s"), TrackApiKey::new("k"), config).unwrap();
    let err = client.account_region().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert_eq!(err.phase(), Phase::MaybeSent);
    assert!(err.is_retryable());
}
