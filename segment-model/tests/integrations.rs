//! Integrations routing: destination key, then `All`, then the opt-out default.

mod common;

use segment_model::integrations::{CUSTOMERIO_ACTIONS_NAMES, IntegrationSetting};
use segment_model::{Integrations, Message};
use serde_json::json;

fn integrations(value: serde_json::Value) -> Integrations {
    serde_json::from_value(value).expect("an object")
}

#[test]
fn fallback_rule() {
    let empty = Integrations::new();
    assert!(empty.is_enabled("Amplitude"));
    assert!(
        !empty.is_enabled("Salesforce"),
        "Salesforce is opt-in by default"
    );

    let all_on = integrations(json!({"All": true}));
    assert!(all_on.is_enabled("Salesforce"));

    let allow_list = integrations(json!({"All": false, "Customer.io (Actions)": true}));
    assert!(allow_list.is_enabled("Customer.io (Actions)"));
    assert!(!allow_list.is_enabled("Mixpanel"));
    assert_eq!(allow_list.all(), Some(false));

    let deny_one = integrations(json!({"Mixpanel": false}));
    assert!(!deny_one.is_enabled("Mixpanel"));
    assert!(deny_one.is_enabled("Amplitude"));

    // Keys are case-sensitive.
    let cased = integrations(json!({"All": false, "customer.io (actions)": true}));
    assert!(!cased.is_enabled("Customer.io (Actions)"));
}

#[test]
fn options_objects_mean_enabled_and_are_readable() {
    let message =
        Message::from_value(common::fixture("track-integrations-options.json")).expect("decodes");
    let i = message.integrations().expect("integrations");
    assert!(i.is_enabled("Amplitude"));
    assert_eq!(
        i.options("Amplitude")
            .and_then(|o| o["session_id"].as_u64()),
        Some(1_714_558_496_000)
    );
    assert!(!i.is_enabled("Salesforce"));
    assert!(!i.is_enabled("Google Analytics"));
    assert!(i.is_enabled("Webhooks (Actions)"));
}

#[test]
fn non_boolean_non_object_values_defer_to_all_and_round_trip() {
    let value = json!({"All": false, "Weird": "yes", "NullOne": null, "Numeric": 1});
    let i = integrations(value.clone());
    assert!(matches!(i.get("Weird"), Some(IntegrationSetting::Other(_))));
    assert!(!i.is_enabled("Weird"));
    assert!(!i.is_enabled("NullOne"));
    assert_eq!(serde_json::to_value(&i).expect("serialises"), value);
    let all_other = integrations(json!({"All": "sure"}));
    assert_eq!(all_other.all(), None);
    assert!(all_other.is_enabled("X"));
}

#[test]
fn destinations_with_several_names() {
    let legacy_name = integrations(json!({"All": false, "Actions Customerio": true}));
    assert!(legacy_name.is_enabled_any(CUSTOMERIO_ACTIONS_NAMES));
    assert!(!legacy_name.is_enabled("Customer.io (Actions)"));
    let off = integrations(json!({"Customer.io Actions": false}));
    assert!(!off.is_enabled_any(CUSTOMERIO_ACTIONS_NAMES));
    // The first deciding name wins.
    let both = integrations(json!({"Customer.io (Actions)": true, "Customer.io Actions": false}));
    assert!(both.is_enabled_any(CUSTOMERIO_ACTIONS_NAMES));
}

#[test]
fn building_and_merging() {
    let mut i = Integrations::new();
    i.set_all(false);
    i.insert("Customer.io (Actions)", true);
    let mut options = serde_json::Map::new();
    options.insert("session_id".into(), json!(5));
    i.insert("Amplitude", options);
    assert_eq!(
        serde_json::to_value(&i).expect("serialises"),
        json!({"All": false, "Customer.io (Actions)": true, "Amplitude": {"session_id": 5}})
    );
    let mut item: Integrations = [("Amplitude", false)].into_iter().collect();
    item.fill_missing_from(&i);
    assert_eq!(
        serde_json::to_value(&item).expect("serialises"),
        json!({"All": false, "Customer.io (Actions)": true, "Amplitude": false})
    );
    assert_eq!(item.len(), 3);
    assert_eq!(item.remove("All"), Some(IntegrationSetting::Enabled(false)));
    assert!(item.iter().all(|(k, _)| k != "All"));
}
