//! The audience filter builder against JSON fixtures, and a seeded property test that every
//! built filter serialises to the grammar of the reference (one key per level, lists under
//! `and`/`or`, one object under `not`, `eq` with a string value, `exists` without) and reads
//! back unchanged.

use customerio_client::app::filter::Filter;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Value, json};

#[test]
fn builder_output_matches_fixtures() {
    let fixtures: Vec<(Filter, Value)> = vec![
        // The reference's search example.
        (
            Filter::and([
                Filter::segment(12),
                Filter::not(Filter::attribute("unsubscribed").eq("true")),
            ]),
            json!({"and": [{"segment": {"id": 12}},
                {"not": {"attribute": {"field": "unsubscribed", "operator": "eq", "value": "true"}}}]}),
        ),
        (Filter::segment(4), json!({"segment": {"id": 4}})),
        (
            Filter::attribute("phone").exists(),
            json!({"attribute": {"field": "phone", "operator": "exists"}}),
        ),
        (
            Filter::attribute("plan").eq("pro"),
            json!({"attribute": {"field": "plan", "operator": "eq", "value": "pro"}}),
        ),
        (
            // Operators: `|` groups, `&` extends, `!` wraps.
            (Filter::attribute("plan").eq("pro") | Filter::attribute("plan").eq("team"))
                & Filter::attribute("email").exists()
                & !Filter::segment(7),
            json!({"and": [
                {"or": [
                    {"attribute": {"field": "plan", "operator": "eq", "value": "pro"}},
                    {"attribute": {"field": "plan", "operator": "eq", "value": "team"}}
                ]},
                {"attribute": {"field": "email", "operator": "exists"}},
                {"not": {"segment": {"id": 7}}}
            ]}),
        ),
        (
            Filter::not(Filter::not(Filter::or([Filter::segment(1)]))),
            json!({"not": {"not": {"or": [{"segment": {"id": 1}}]}}}),
        ),
    ];
    for (filter, expected) in fixtures {
        assert!(filter.validate().is_ok(), "{filter:?}");
        assert_eq!(serde_json::to_value(&filter).unwrap(), expected);
        let back: Filter = serde_json::from_value(expected.clone()).unwrap();
        assert_eq!(back, filter, "{expected}");
    }
}

/// An independent check of the filter grammar on plain JSON.
fn grammar_ok(value: &Value) -> Result<(), String> {
    let object = value.as_object().ok_or("a level is not an object")?;
    if object.len() != 1 {
        return Err(format!("a level has {} keys", object.len()));
    }
    let (key, inner) = object.iter().next().ok_or("empty object")?;
    match key.as_str() {
        "and" | "or" => {
            let list = inner.as_array().ok_or("group is not a list")?;
            if list.is_empty() {
                return Err("empty group".into());
            }
            list.iter().try_for_each(grammar_ok)
        }
        "not" => grammar_ok(inner),
        "segment" => match inner.as_object() {
            Some(s) if s.len() == 1 && s.get("id").is_some_and(Value::is_u64) => Ok(()),
            _ => Err("segment is not {id: integer}".into()),
        },
        "attribute" => {
            let a = inner.as_object().ok_or("attribute is not an object")?;
            if !a.get("field").is_some_and(Value::is_string) {
                return Err("attribute.field is not a string".into());
            }
            match (
                a.get("operator").and_then(Value::as_str),
                a.get("value"),
                a.len(),
            ) {
                (Some("eq"), Some(Value::String(_)), 3) => Ok(()),
                (Some("exists"), None, 2) => Ok(()),
                _ => Err(format!("attribute has a bad operator/value shape: {inner}")),
            }
        }
        other => Err(format!("unknown key `{other}`")),
    }
}

fn leaf() -> impl Strategy<Value = Filter> {
    prop_oneof![
        any::<u64>().prop_map(Filter::segment),
        ("[a-z_.]{1,12}", "\\PC{0,12}").prop_map(|(f, v)| Filter::attribute(f).eq(v)),
        "[a-z_]{1,12}".prop_map(|f| Filter::attribute(f).exists()),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Filter::and),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Filter::or),
            inner.prop_map(Filter::not),
        ]
    })
}

proptest! {
    #![proptest_config(Config {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x5eed_f117),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn built_filters_follow_the_grammar_and_round_trip(filter in filter()) {
        prop_assert!(filter.validate().is_ok());
        let value = serde_json::to_value(&filter).unwrap();
        prop_assert_eq!(grammar_ok(&value), Ok(()));
        let back: Filter = serde_json::from_value(value).unwrap();
        prop_assert_eq!(back, filter);
    }
}
