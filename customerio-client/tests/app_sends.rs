//! App API sends against a mock server: transactional messages and broadcast triggers. Each
//! test asserts the exact method, path, query, Bearer header and JSON body, and how many
//! requests arrived.

use std::time::Duration;

use customerio_client::app::broadcast::{
    Audience, MissingPeople, TriggerBroadcast, UserData, error_details,
};
use customerio_client::app::filter::Filter;
use customerio_client::app::people::PageRequest;
use customerio_client::app::transactional::{
    PlainBodyField, SendEmail, SendPush, SendSms, SendTemplate, SendWhatsApp,
};
use customerio_client::{AppApiKey, AppClient, ClientConfig, ErrorKind, Identifier, Phase, Region};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "app-secret-key";

fn client(server: &MockServer) -> AppClient {
    let config = ClientConfig::new(Region::Us)
        .with_app_base_url(&server.uri())
        .unwrap();
    AppClient::new(AppApiKey::new(KEY), config).unwrap()
}

/// Matches a request whose whole query string is exactly `expected` (`None`: no query).
fn exact_query(expected: Option<&'static str>) -> impl Fn(&Request) -> bool + Send + Sync {
    move |request: &Request| request.url.query() == expected
}

/// A mock for `POST {route}` with the App API headers and exactly `body`.
fn post(route: &str, body: Value) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(route))
        .and(exact_query(None))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(body))
}

fn delivered() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY", "queued_at": 1717172500}),
    )
}

#[tokio::test]
async fn template_email_is_sent_as_documented() {
    let server = MockServer::start().await;
    post(
        "/v1/send/email",
        json!({
            "transactional_message_id": "password_reset",
            "to": "ada@example.com",
            "identifiers": {"id": "user-42"},
            "message_data": {"reset_url": "https://example.com/r/abc"},
            "send_to_unsubscribed": true,
            "tracked": false
        }),
    )
    .respond_with(delivered())
    .expect(1)
    .mount(&server)
    .await;
    let email = SendEmail::template(
        "password_reset",
        "ada@example.com",
        Identifier::id("user-42"),
    )
    .with_message_data(json!({"reset_url": "https://example.com/r/abc"}))
    .send_to_unsubscribed(true)
    .tracked(false);
    let delivery = client(&server).send_email(&email).await.unwrap();
    assert_eq!(delivery.delivery_id, "RPILAgUBcRhIBqSfeiIwdIYJKxTY");
    assert_eq!(delivery.queued_at, Some(1_717_172_500));
    assert!(delivery.extra.is_empty());
}

#[tokio::test]
async fn content_email_with_attachment_and_plaintext_field_choice() {
    let server = MockServer::start().await;
    post(
        "/v1/send/email",
        json!({
            "to": "Ada <ada@example.com>",
            "identifiers": {"email": "ada@example.com"},
            "from": "Billing <billing@example.com>",
            "subject": "Your invoice",
            "body": "<p>Attached.</p>",
            "plaintext_body": "Attached.",
            // printf 'PDF' | base64 → UERG
            "attachments": {"invoice.pdf": "UERG"},
            "headers": {"X-Invoice": "A-1009"},
            "transactional_message_id": 12
        }),
    )
    .respond_with(delivered())
    .expect(1)
    .mount(&server)
    .await;
    let mut email = SendEmail::content(
        "Ada <ada@example.com>",
        Identifier::email("ada@example.com"),
        "Billing <billing@example.com>",
        "Your invoice",
        "<p>Attached.</p>",
    )
    .plain_body("Attached.")
    .plain_body_field(PlainBodyField::PlaintextBody)
    .attach("invoice.pdf", b"PDF")
    .header("X-Invoice", "A-1009");
    email.transactional_message_id = Some(12.into());
    client(&server).send_email(&email).await.unwrap();
}

#[tokio::test]
async fn other_channels_post_to_their_paths() {
    let server = MockServer::start().await;
    post(
        "/v1/send/push",
        json!({"transactional_message_id": 5, "identifiers": {"cio_id": "a3000001"},
               "title": "Shipped", "message": "Order A-1009 is on its way",
               "custom_data": {"order": "A-1009"}}),
    )
    .respond_with(delivered())
    .expect(1)
    .mount(&server)
    .await;
    post(
        "/v1/send/sms",
        json!({"transactional_message_id": "otp", "identifiers": {"id": "user-42"},
               "to": "+14155550100", "send_at": 1717172500}),
    )
    .respond_with(delivered())
    .expect(1)
    .mount(&server)
    .await;
    post(
        "/v1/send/whatsapp",
        json!({"transactional_message_id": 8, "identifiers": {"id": "user-42"}, "to": "+4915112345678"}),
    )
    .respond_with(delivered())
    .expect(1)
    .mount(&server)
    .await;
    post(
        "/v1/send/in_app",
        json!({"transactional_message_id": 9, "identifiers": {"id": "user-42"}, "queue_draft": true}),
    )
    .respond_with(delivered())
    .expect(1)
    .mount(&server)
    .await;
    post(
        "/v1/send/inbox_message",
        json!({"transactional_message_id": 10, "identifiers": {"id": "user-42"},
               "disable_message_retention": true, "language": "de"}),
    )
    .respond_with(delivered())
    .expect(1)
    .mount(&server)
    .await;

    let client = client(&server);
    let mut push = SendPush::new(5, Identifier::cio_id("cio_a3000001"))
        .text("Shipped", "Order A-1009 is on its way");
    push.custom_data = Some([("order".to_owned(), "A-1009".to_owned())].into());
    client.send_push(&push).await.unwrap();
    client
        .send_sms(
            &SendSms::new("otp", Identifier::id("user-42"))
                .to("+14155550100")
                // A past time sends at once; it is not refused.
                .send_at(1_717_172_500),
        )
        .await
        .unwrap();
    client
        .send_whatsapp(&SendWhatsApp::new(8, Identifier::id("user-42")).to("+4915112345678"))
        .await
        .unwrap();
    client
        .send_in_app(&SendTemplate::new(9, Identifier::id("user-42")).queue_draft(true))
        .await
        .unwrap();
    client
        .send_inbox_message(
            &SendTemplate::new(10, Identifier::id("user-42"))
                .disable_message_retention(true)
                .language("de"),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn send_400_meta_error_is_parsed_and_not_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/send/email"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"meta": {"error": "ada@example.com: to is not a valid address"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let email = SendEmail::template(1, "ada@example.com", Identifier::email("ada@example.com"));
    let err = client(&server).send_email(&email).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Client);
    assert_eq!(err.phase(), Phase::ResponseReceived);
    assert_eq!(err.status_code().map(|s| s.as_u16()), Some(400));
    assert!(!err.is_retryable());
    assert_eq!(err.operation(), "app.transactional.email");
    assert_eq!(
        err.api_errors()[0].message.as_deref(),
        Some("ada@example.com: to is not a valid address")
    );
    // The address is in the body, never in what gets logged.
    assert!(!err.to_string().contains("ada@"));
    assert!(!format!("{err:?}").contains("ada@"));
}

#[tokio::test]
async fn statuses_are_classified_and_never_retried_by_the_client() {
    // (status, retry-after, kind, retryable)
    let cases: [(u16, Option<&str>, ErrorKind, bool); 4] = [
        (401, None, ErrorKind::Auth, false),
        (429, Some("10"), ErrorKind::Throttled, true),
        (500, None, ErrorKind::Server, true),
        (503, Some("2"), ErrorKind::Server, true),
    ];
    for (status, retry_after, kind, retryable) in cases {
        let server = MockServer::start().await;
        let mut response = ResponseTemplate::new(status);
        if status == 429 {
            response = response.set_body_json(
                json!({"errors": [{"detail": "rate limited to 10 requests per 1s", "status": "429"}]}),
            );
        }
        if let Some(value) = retry_after {
            response = response.insert_header("retry-after", value);
        }
        Mock::given(method("POST"))
            .and(path("/v1/send/sms"))
            .respond_with(response)
            // A send is not idempotent: the client itself never repeats it.
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server)
            .send_sms(&SendSms::new(1, Identifier::id("u")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "status {status}");
        assert_eq!(err.is_retryable(), retryable, "status {status}");
        assert_eq!(
            err.retry_after(),
            retry_after.map(|s| Duration::from_secs(s.parse().unwrap())),
            "status {status}"
        );
        if status == 429 {
            assert_eq!(
                err.api_errors()[0].message.as_deref(),
                Some("rate limited to 10 requests per 1s")
            );
        }
        server.verify().await;
    }
}

#[tokio::test]
async fn invalid_sends_are_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(delivered())
        .expect(0)
        .mount(&server)
        .await;
    let client = client(&server);
    let sixteen = (0..16)
        .map(|i| format!("p{i}@example.com"))
        .collect::<Vec<_>>()
        .join(", ");
    let errors = [
        client
            .send_email(&SendEmail::template(
                1,
                "a@example.com",
                Identifier::phone("+14155550100"),
            ))
            .await
            .unwrap_err(),
        client
            .send_email(&SendEmail::template(1, sixteen, Identifier::id("u")))
            .await
            .unwrap_err(),
        client
            .send_email(
                &SendEmail::template(1, "a@example.com", Identifier::id("u"))
                    .attach("big.bin", &vec![0u8; 2_000_001]),
            )
            .await
            .unwrap_err(),
        client
            .send_push(&SendPush::new(1, Identifier::phone("+14155550100")))
            .await
            .unwrap_err(),
        client
            .send_email(
                &SendEmail::template(1, "a@example.com", Identifier::id("u")).send_at(i64::MAX),
            )
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        assert_eq!(err.phase(), Phase::NotSent, "{err}");
        assert!(!err.to_string().contains("4155550100"), "{err}");
    }
}

#[tokio::test]
async fn broadcast_trigger_with_ids_matches_the_reference_example() {
    let server = MockServer::start().await;
    post(
        "/v1/campaigns/17/triggers",
        json!({"data": {"headline": "Spring sale"}, "ids": ["user-42", "user-43"], "id_ignore_missing": true}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 3021, "queued": true})))
    .expect(1)
    .mount(&server)
    .await;
    let trigger = TriggerBroadcast::new(Audience::ids(["user-42", "user-43"]).ignore_missing())
        .with_data(json!({"headline": "Spring sale"}));
    let triggered = client(&server)
        .trigger_broadcast(17, &trigger)
        .await
        .unwrap();
    assert_eq!(triggered.id, 3021);
    assert_eq!(triggered.extra.get("queued"), Some(&json!(true)));
}

#[tokio::test]
async fn broadcast_audiences_on_the_wire() {
    let server = MockServer::start().await;
    let filter = Filter::segment(12) & !Filter::attribute("unsubscribed").eq("true");
    post(
        "/v1/campaigns/5/triggers",
        json!({"recipients": {"and": [{"segment": {"id": 12}},
               {"not": {"attribute": {"field": "unsubscribed", "operator": "eq", "value": "true"}}}]}}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
    .expect(1)
    .mount(&server)
    .await;
    post(
        "/v1/campaigns/6/triggers",
        json!({"per_user_data": [{"id": "u1", "data": {"code": "A"}}, {"email": "b@example.com", "data": {"code": "B"}}],
               "email_add_duplicates": true}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 2})))
    .expect(1)
    .mount(&server)
    .await;
    post(
        "/v1/campaigns/7/triggers",
        json!({"data_file_url": "https://files.example.com/people.jsonl.gz",
               "id_ignore_missing": true, "email_ignore_missing": true}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 3})))
    .expect(1)
    .mount(&server)
    .await;
    post("/v1/campaigns/8/triggers", json!({}))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 4})))
        .expect(1)
        .mount(&server)
        .await;

    let client = client(&server);
    let data = |code: &str| json!({"code": code}).as_object().cloned().unwrap();
    let ids = [
        client
            .trigger_broadcast(5, &TriggerBroadcast::new(Audience::recipients(filter)))
            .await
            .unwrap()
            .id,
        client
            .trigger_broadcast(
                6,
                &TriggerBroadcast::new(Audience::PerUserData {
                    entries: vec![
                        UserData::id("u1", data("A")),
                        UserData::email("b@example.com", data("B")),
                    ],
                    flags: MissingPeople {
                        email_add_duplicates: true,
                        ..MissingPeople::default()
                    },
                }),
            )
            .await
            .unwrap()
            .id,
        client
            .trigger_broadcast(
                7,
                &TriggerBroadcast::new(
                    Audience::data_file_url("https://files.example.com/people.jsonl.gz")
                        .ignore_missing(),
                ),
            )
            .await
            .unwrap()
            .id,
        client
            .trigger_broadcast(8, &TriggerBroadcast::new(Audience::Default))
            .await
            .unwrap()
            .id,
    ];
    assert_eq!(ids, [1, 2, 3, 4]);
}

#[tokio::test]
async fn broadcast_422_details_keep_the_pointer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/campaigns/17/triggers"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"errors": [
            {"detail": "per_user_data entry 2 has no id or email (trigger 12)",
             "source": {"pointer": "/data/attributes/per_user_data"}, "status": "422"},
            {"detail": "too many triggers queued", "status": "422", "code": "queue_full"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let trigger = TriggerBroadcast::new(Audience::emails(["a@example.com"]));
    let err = client(&server)
        .trigger_broadcast(17, &trigger)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Client);
    assert!(!err.is_retryable());
    assert_eq!(err.status_code().map(|s| s.as_u16()), Some(422));
    // The foundation parser keeps the messages and codes …
    let messages: Vec<_> = err
        .api_errors()
        .iter()
        .map(|e| e.message.as_deref())
        .collect();
    assert_eq!(
        messages,
        [
            Some("per_user_data entry 2 has no id or email (trigger 12)"),
            Some("too many triggers queued")
        ]
    );
    assert_eq!(err.api_errors()[1].code.as_deref(), Some("queue_full"));
    // … and `error_details` adds the pointer and status.
    let details = error_details(&err);
    assert_eq!(details.len(), 2);
    assert_eq!(details[0].pointer(), Some("/data/attributes/per_user_data"));
    assert_eq!(details[0].status.as_deref(), Some("422"));
    assert_eq!(details[1].pointer(), None);
    assert_eq!(details[1].code.as_deref(), Some("queue_full"));
}

#[tokio::test]
async fn invalid_broadcasts_are_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .expect(0)
        .mount(&server)
        .await;
    let client = client(&server);
    let too_many: Vec<String> = (0..10_001).map(|i| format!("user-{i}")).collect();
    for trigger in [
        TriggerBroadcast::new(Audience::ids(too_many)),
        TriggerBroadcast::new(Audience::emails(Vec::<String>::new())),
        TriggerBroadcast::new(Audience::recipients(Filter::attribute("").exists())),
        TriggerBroadcast::new(Audience::data_file_url("not a url")),
    ] {
        let err = client.trigger_broadcast(1, &trigger).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        assert_eq!(err.phase(), Phase::NotSent);
        assert_eq!(err.operation(), "app.broadcast.trigger");
    }
}

#[tokio::test]
async fn broadcast_follow_ups_use_their_paths_and_paging() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/campaigns/17/triggers/3021"))
        .and(exact_query(None))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"trigger": {"id": 3021, "processed": true}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/campaigns/17/triggers/3021/errors"))
        .and(exact_query(Some("start=abc&limit=50")))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"errors": [], "next": ""})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let status = client.broadcast_trigger_status(17, 3021).await.unwrap();
    assert_eq!(status["trigger"]["processed"], json!(true));
    let errors = client
        .broadcast_trigger_errors(17, 3021, &PageRequest::first(50).after("abc"))
        .await
        .unwrap();
    assert_eq!(errors["errors"], json!([]));
}

#[tokio::test]
async fn eu_and_us_app_hosts_and_a_proxy_prefix() {
    assert_eq!(
        ClientConfig::new(Region::Eu).app_base_url().as_str(),
        "https://api-eu.customer.io/"
    );
    assert_eq!(
        ClientConfig::new(Region::Us).app_base_url().as_str(),
        "https://api.customer.io/"
    );
    let eu = AppClient::new(AppApiKey::new(KEY), ClientConfig::new(Region::Eu)).unwrap();
    assert_eq!(eu.base_url().host_str(), Some("api-eu.customer.io"));
    assert!(!format!("{eu:?}").contains(KEY));

    // A base URL with a path prefix keeps it in front of `/v1/...`.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/proxy/cio/v1/send/sms"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(delivered())
        .expect(1)
        .mount(&server)
        .await;
    let config = ClientConfig::new(Region::Eu)
        .with_app_base_url(&format!("{}/proxy/cio", server.uri()))
        .unwrap();
    let client = AppClient::new(AppApiKey::new(KEY), config).unwrap();
    client
        .send_sms(&SendSms::new(1, Identifier::id("u")))
        .await
        .unwrap();
}

#[tokio::test]
async fn service_account_tokens_name_the_workspace_on_every_request() {
    let server = MockServer::start().await;
    post(
        "/v1/send/sms",
        json!({"transactional_message_id": 7, "to": "+14155550100", "identifiers": {"id": "u1"}}),
    )
    .and(header("x-workspace-id", "123456"))
    .respond_with(delivered())
    .expect(1)
    .mount(&server)
    .await;
    let client = client(&server).with_workspace_id(123_456);
    let sms = SendSms::new(7u64, Identifier::id("u1")).to("+14155550100");
    client.send_sms(&sms).await.unwrap();
}
