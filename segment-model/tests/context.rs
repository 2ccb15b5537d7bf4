//! The typed context: every standard field decoded, unknown keys kept per sub-object.

mod common;

use segment_model::context::{Context, ExternalId};
use segment_model::{Message, NumberOrString};
use serde_json::json;

fn full_context() -> Context {
    let message = Message::from_value(common::fixture("track-full-context.json")).expect("decodes");
    message.context().expect("context").clone()
}

#[test]
fn every_standard_field_is_typed() {
    let c = full_context();
    assert_eq!(c.active, Some(true));
    assert_eq!(c.app.as_ref().and_then(|a| a.build.as_deref()), Some("420"));
    assert_eq!(
        c.app.as_ref().and_then(|a| a.namespace.as_deref()),
        Some("com.example.app")
    );
    let campaign = c.campaign.as_ref().expect("campaign");
    assert_eq!(campaign.medium.as_deref(), Some("email"));
    assert_eq!(campaign.extra["utm_id"], "x1");
    let device = c.device.as_ref().expect("device");
    assert_eq!(device.device_type.as_deref(), Some("android"));
    assert_eq!(device.ad_tracking_enabled, Some(true));
    assert_eq!(device.token.as_deref(), Some("push-tok-1"));
    assert_eq!(c.ip.as_deref(), Some("203.0.113.77"));
    assert_eq!(c.direct, Some(true));
    assert_eq!(
        c.library.as_ref().and_then(|l| l.name.as_deref()),
        Some("analytics-kotlin")
    );
    assert_eq!(c.locale.as_deref(), Some("en-US"));
    let location = c.location.as_ref().expect("location");
    assert!(matches!(location.latitude, Some(NumberOrString::Number(_))));
    assert_eq!(
        location.longitude,
        Some(NumberOrString::String("13.405".into()))
    );
    assert_eq!(
        location.longitude.as_ref().and_then(NumberOrString::as_f64),
        Some(13.405)
    );
    assert_eq!(c.network.as_ref().and_then(|n| n.cellular), Some(true));
    assert_eq!(c.os.as_ref().and_then(|o| o.version.as_deref()), Some("14"));
    assert_eq!(
        c.page.as_ref().and_then(|p| p.hash.as_deref()),
        Some("#top")
    );
    let referrer = c.referrer.as_ref().expect("referrer");
    assert_eq!(referrer.referrer_type.as_deref(), Some("dataxu"));
    assert_eq!(referrer.extra["btid"], "b-1");
    assert_eq!(
        c.screen
            .as_ref()
            .and_then(|s| s.density.as_ref())
            .and_then(|d| d.as_f64()),
        Some(2.625)
    );
    assert_eq!(
        c.group_id
            .as_ref()
            .map(|g| g.as_str().into_owned())
            .as_deref(),
        Some("acct_2718")
    );
    assert_eq!(c.timezone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(c.email(), Some("someone@example.org"));
    assert_eq!(
        c.user_agent.as_deref(),
        Some("Mozilla/5.0 (Linux; Android 14)")
    );
    let uad = c.user_agent_data.as_ref().expect("userAgentData");
    assert_eq!(uad.brands.as_ref().map(Vec::len), Some(2));
    assert_eq!(uad.mobile, Some(true));
    assert_eq!(
        uad.full_version_list
            .as_ref()
            .and_then(|l| l[0].version.as_deref()),
        Some("124.0.6367.82")
    );
    assert_eq!(c.channel.as_deref(), Some("mobile"));
    let ids = c.external_ids.as_ref().expect("externalIds");
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].id_type.as_deref(), Some("email"));
    assert_eq!(ids[0].collection.as_deref(), Some("users"));
    assert_eq!(ids[0].encoding.as_deref(), Some("none"));
    let personas = c.personas.as_ref().expect("personas");
    assert_eq!(personas.computation_class.as_deref(), Some("audience"));
    let consent = c.consent.as_ref().expect("consent");
    assert_eq!(consent.category_allowed("Advertising"), Some(false));
    assert_eq!(consent.category_allowed("Analytics"), Some(true));
    assert_eq!(consent.category_allowed("Missing"), None);
    // Unmodelled context keys are kept.
    let mut extra: Vec<_> = c.extra.keys().cloned().collect();
    extra.sort();
    assert_eq!(extra, ["amp", "metrics", "protocols"]);
    assert!(c.nonconforming_paths().is_empty());
}

#[test]
fn engage_personas_fields() {
    let message =
        Message::from_value(common::fixture("identify-computed-trait.json")).expect("decodes");
    let personas = message
        .context()
        .and_then(|c| c.personas.as_ref())
        .expect("personas");
    assert_eq!(personas.computation_key.as_deref(), Some("orders_90d"));
    assert_eq!(personas.computation_run_id.as_deref(), Some("run_77"));
    assert_eq!(personas.event_emitter_id.as_deref(), Some("emit_3"));
    assert_eq!(personas.space_id.as_deref(), Some("spa_9zYxWvUtS"));
    assert_eq!(personas.namespace.as_deref(), Some("spa_9zYxWvUtS"));
    assert_eq!(
        personas
            .audience_settings
            .as_ref()
            .map(|s| s["list_name"].clone()),
        Some(json!("Big spenders"))
    );
}

#[test]
fn values_with_undocumented_types_are_kept_in_extra() {
    let input = json!({"app": {"name": "RN", "build": 42}, "ip": ["a"], "traits": "x"});
    let context: Context = serde_json::from_value(input.clone()).expect("lenient");
    let app = context.app.as_ref().expect("app");
    assert_eq!(app.name.as_deref(), Some("RN"));
    assert_eq!(app.build, None);
    assert_eq!(app.extra["build"], 42);
    assert_eq!(context.ip, None);
    assert_eq!(context.traits, None);
    assert_eq!(serde_json::to_value(&context).expect("serialises"), input);
    // Context itself must still be an object.
    assert!(serde_json::from_value::<Context>(json!("web")).is_err());
}

#[test]
fn fill_missing_from_is_shallow_and_respects_nulls() {
    let mut item: Context =
        serde_json::from_value(json!({"ip": null, "library": {"name": "mine"}})).expect("ctx");
    let batch: Context = serde_json::from_value(json!({
        "ip": "203.0.113.1", "library": {"name": "theirs", "version": "1"}, "locale": "en", "custom": 1
    }))
    .expect("ctx");
    item.fill_missing_from(&batch);
    assert_eq!(
        serde_json::to_value(&item).expect("serialises"),
        json!({"ip": null, "library": {"name": "mine"}, "locale": "en", "custom": 1})
    );
}

#[test]
fn building_a_context_in_code() {
    let mut context = Context::default();
    context.ip = Some("192.0.2.1".into());
    let mut id = ExternalId::default();
    id.id = Some("a@example.org".into());
    id.id_type = Some("email".into());
    context.external_ids = Some(vec![id]);
    assert_eq!(
        serde_json::to_value(&context).expect("serialises"),
        json!({"ip": "192.0.2.1", "externalIds": [{"id": "a@example.org", "type": "email"}]})
    );
}
