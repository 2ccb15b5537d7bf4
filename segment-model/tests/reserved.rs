//! Reserved trait and property accessors: lenient by default, typed errors from `try_`.

mod common;

use segment_model::{Error, JsonType, Message, NumberOrString, Properties, Traits};
use serde_json::json;

fn traits(value: serde_json::Value) -> Traits {
    serde_json::from_value(value).expect("an object")
}

fn properties(value: serde_json::Value) -> Properties {
    serde_json::from_value(value).expect("an object")
}

#[test]
fn identify_fixture_traits() {
    let message = Message::from_value(common::fixture("identify-basic.json")).expect("decodes");
    let t = message.traits().expect("traits");
    assert_eq!(t.email(), Some("lena.fischer@example.org"));
    assert_eq!(t.first_name(), Some("Lena"));
    assert_eq!(t.last_name(), Some("Fischer"));
    assert_eq!(t.name().as_deref(), Some("Lena Fischer"));
    assert_eq!(t.plan(), Some("growth"));
    assert_eq!(
        t.created_at().map(|ts| ts.as_unix_seconds()),
        Some(1_698_912_000)
    );
    let company = t.company().expect("company");
    assert_eq!(company.name.as_deref(), Some("Nordlicht GmbH"));
    assert_eq!(
        company
            .id
            .as_ref()
            .map(|id| id.as_str().into_owned())
            .as_deref(),
        Some("9911")
    );
    assert_eq!(
        company.employee_count.as_ref().and_then(|n| n.as_u64()),
        Some(42)
    );
}

#[test]
fn snake_case_spellings_are_the_fallback() {
    let message =
        Message::from_value(common::fixture("identify-snake-case-traits.json")).expect("decodes");
    let t = message.traits().expect("traits");
    assert_eq!(t.first_name(), Some("Ada"));
    assert_eq!(t.last_name(), Some("Lovelace"));
    assert_eq!(t.name().as_deref(), Some("Ada Lovelace"));
    assert_eq!(
        t.created_at().map(|ts| ts.as_unix_seconds()),
        Some(1_700_000_000)
    );
    assert_eq!(t.age(), Some(36));
    assert_eq!(t.gender(), Some("female"));
    let address = t.address().expect("address");
    assert_eq!(address.city.as_deref(), Some("London"));
    assert_eq!(address.street.as_deref(), Some("1 Main St"));

    // camelCase wins when both are present.
    let both = traits(json!({"firstName": "Camel", "first_name": "snake"}));
    assert_eq!(both.first_name(), Some("Camel"));
    // A null camelCase value falls through to snake_case.
    let null_camel = traits(json!({"createdAt": null, "created_at": "2024-05-01"}));
    assert_eq!(
        null_camel
            .created_at()
            .map(|t| t.as_str().to_owned())
            .as_deref(),
        Some("2024-05-01")
    );
}

#[test]
fn name_prefers_the_name_trait_and_falls_back_to_parts() {
    assert_eq!(
        traits(json!({"name": "Full", "firstName": "F"}))
            .name()
            .as_deref(),
        Some("Full")
    );
    assert_eq!(
        traits(json!({"firstName": "Only"})).name().as_deref(),
        Some("Only")
    );
    assert_eq!(
        traits(json!({"lastName": "Last"})).name().as_deref(),
        Some("Last")
    );
    assert_eq!(traits(json!({})).name(), None);
    assert_eq!(
        traits(json!({"name": 5, "firstName": "F"}))
            .name()
            .as_deref(),
        Some("F")
    );
    assert!(matches!(
        traits(json!({"name": 5})).try_name(),
        Err(Error::WrongType { ref path, found: JsonType::Number, .. }) if path == "name"
    ));
}

#[test]
fn strings_or_numbers_where_sdks_send_either() {
    let numeric =
        Message::from_value(common::fixture("identify-numeric-user-id.json")).expect("decodes");
    let t = numeric.traits().expect("traits");
    assert_eq!(t.phone().as_deref(), Some("4915112345678"));
    assert_eq!(t.id().as_deref(), Some("48151623"));
    let group = Message::from_value(common::fixture("group-basic.json")).expect("decodes");
    assert!(matches!(
        group.traits().and_then(|t| t.employees()),
        Some(NumberOrString::Number(_))
    ));
    let ranged =
        Message::from_value(common::fixture("group-numeric-group-id.json")).expect("decodes");
    assert_eq!(
        ranged.traits().and_then(|t| t.employees()),
        Some(NumberOrString::String("50-100".into()))
    );
}

#[test]
fn wrong_types_are_none_leniently_and_errors_with_try() {
    let t = traits(json!({
        "email": 12, "createdAt": "last tuesday", "birthday": true, "age": -3,
        "address": "Main St", "company": [1], "phone": {"n": 1}, "employees": []
    }));
    assert_eq!(t.email(), None);
    assert_eq!(t.created_at(), None);
    assert_eq!(t.birthday(), None);
    assert_eq!(t.age(), None);
    assert_eq!(t.address(), None);
    assert_eq!(t.company(), None);
    assert_eq!(t.phone(), None);
    assert_eq!(t.employees(), None);

    assert!(
        matches!(t.try_email(), Err(Error::WrongType { ref path, expected: "a string", found: JsonType::Number }) if path == "email")
    );
    assert!(
        matches!(t.try_created_at(), Err(Error::InvalidTimestamp { ref path }) if path == "createdAt")
    );
    assert!(
        matches!(t.try_birthday(), Err(Error::WrongType { ref path, .. }) if path == "birthday")
    );
    assert!(matches!(t.try_age(), Err(Error::OutOfRange { ref path }) if path == "age"));
    assert!(
        matches!(t.try_address(), Err(Error::WrongType { ref path, found: JsonType::String, .. }) if path == "address")
    );
    assert!(
        matches!(t.try_company(), Err(Error::WrongType { ref path, found: JsonType::Array, .. }) if path == "company")
    );
    assert!(matches!(t.try_phone(), Err(Error::WrongType { ref path, .. }) if path == "phone"));
    assert!(
        matches!(t.try_employees(), Err(Error::WrongType { ref path, .. }) if path == "employees")
    );

    let absent = traits(json!({"email": null}));
    assert!(matches!(absent.try_email(), Ok(None)));
    assert!(matches!(absent.try_created_at(), Ok(None)));
}

#[test]
fn created_at_numbers_are_unix_seconds_and_range_checked() {
    assert_eq!(
        traits(json!({"createdAt": 1_700_000_000.5}))
            .created_at()
            .map(|t| t.as_unix_millis()),
        Some(1_700_000_000_500)
    );
    assert!(matches!(
        traits(json!({"createdAt": 1e300})).try_created_at(),
        Err(Error::OutOfRange { ref path }) if path == "createdAt"
    ));
    assert!(matches!(
        traits(json!({"created_at": 99_999_999_999_999_i64})).try_created_at(),
        Err(Error::OutOfRange { ref path }) if path == "created_at"
    ));
    assert_eq!(
        traits(json!({"birthday": "1990-04-17"}))
            .birthday()
            .map(|t| t.instant().to_string()),
        Some("1990-04-17T00:00:00Z".to_owned())
    );
}

#[test]
fn other_string_traits() {
    let t = traits(json!({
        "username": "ada", "title": "CTO", "avatar": "https://img.example/a.png",
        "website": "https://ada.example", "description": "bio", "industry": "Energy", "age": 41.0
    }));
    assert_eq!(t.username(), Some("ada"));
    assert_eq!(t.title(), Some("CTO"));
    assert_eq!(t.avatar(), Some("https://img.example/a.png"));
    assert_eq!(t.website(), Some("https://ada.example"));
    assert_eq!(t.description(), Some("bio"));
    assert_eq!(t.industry(), Some("Energy"));
    assert_eq!(t.age(), Some(41));
}

#[test]
fn properties_accessors() {
    let track = Message::from_value(common::fixture("track-basic.json")).expect("decodes");
    let p = track.properties().expect("properties");
    assert_eq!(p.revenue(), Some(49.0));
    assert_eq!(p.currency(), Some("EUR"));
    assert_eq!(p.value(), None);

    let page = Message::from_value(common::fixture("page-basic.json")).expect("decodes");
    let p = page.properties().expect("properties");
    assert_eq!(p.path(), Some("/pricing"));
    assert_eq!(p.url(), Some("https://www.example.com/pricing?ref=nav"));
    assert_eq!(p.title(), Some("Pricing | Example"));
    assert_eq!(p.referrer(), Some("https://search.example.net/?q=sync"));
    assert_eq!(p.search(), Some("?ref=nav"));
    assert_eq!(p.category(), Some("Docs"));
    assert_eq!(p.keywords(), Some(vec!["pricing", "plans"]));

    let bad =
        properties(json!({"revenue": "19.99", "value": true, "keywords": ["a", 2], "name": 1}));
    assert_eq!(bad.revenue(), None);
    assert_eq!(bad.keywords(), Some(vec!["a"]));
    assert!(
        matches!(bad.try_revenue(), Err(Error::WrongType { ref path, expected: "a number", found: JsonType::String }) if path == "revenue")
    );
    assert!(matches!(bad.try_value(), Err(Error::WrongType { ref path, .. }) if path == "value"));
    assert!(
        matches!(bad.try_keywords(), Err(Error::WrongType { ref path, .. }) if path == "keywords[1]")
    );
    assert!(matches!(bad.try_name(), Err(Error::WrongType { ref path, .. }) if path == "name"));
}

#[test]
fn newtypes_behave_like_maps_and_serialise_transparently() {
    let mut t = Traits::new().with("email", "a@example.org");
    t.insert("plan".into(), json!("pro"));
    assert_eq!(t.len(), 2);
    assert_eq!(
        serde_json::to_value(&t).expect("serialises"),
        json!({"email": "a@example.org", "plan": "pro"})
    );
    let p: Properties = [("revenue", json!(1.5))].into_iter().collect();
    assert_eq!(p.revenue(), Some(1.5));
    assert!(serde_json::from_value::<Traits>(json!([1])).is_err());
}

#[test]
fn context_traits_email() {
    let message = Message::from_value(common::fixture("track-email-opened.json")).expect("decodes");
    assert_eq!(
        message.context().and_then(|c| c.email()),
        Some("lena.fischer@example.org")
    );
}
