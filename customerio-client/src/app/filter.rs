//! The audience filter language of the App API.
//!
//! One filter language picks people in three places: the people search
//! ([`AppClient::search_customers`](crate::AppClient::search_customers)), the `recipients` of an
//! API-triggered broadcast ([`Audience::Recipients`](crate::app::broadcast::Audience::Recipients))
//! and exports. A filter is a tree:
//!
//! - leaves: membership of a segment (`{"segment": {"id": 4}}`) or a condition on an attribute
//!   (`{"attribute": {"field": "plan", "operator": "eq", "value": "pro"}}`, or with
//!   `"operator": "exists"` and no value);
//! - groups: `{"and": [...]}` and `{"or": [...]}` hold lists, `{"not": {...}}` holds one filter.
//!
//! Groups nest, and every level of the tree is an object with exactly one key, which is what
//! the [`Filter`] enum serialises to.
//!
//! ```
//! use customerio_client::app::filter::Filter;
//! use serde_json::json;
//!
//! let filter = Filter::segment(12) & !Filter::attribute("unsubscribed").eq("true");
//! assert_eq!(
//!     serde_json::to_value(&filter)?,
//!     json!({"and": [
//!         {"segment": {"id": 12}},
//!         {"not": {"attribute": {"field": "unsubscribed", "operator": "eq", "value": "true"}}}
//!     ]})
//! );
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! The attribute operators the reference documents are `eq` (the value is sent as a string)
//! and `exists`. A filter read from JSON with any other operator keeps it as
//! [`AttributeTest::Other`], so decoding and encoding again gives the same JSON.

use std::ops;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// An audience filter: a segment or attribute condition, or an `and` / `or` / `not` group of
/// filters.
///
/// Build one with the constructors ([`Filter::segment`], [`Filter::attribute`], [`Filter::and`],
/// [`Filter::or`], [`Filter::not`]) or the operators `&`, `|` and `!`:
///
/// ```
/// use customerio_client::app::filter::Filter;
///
/// let paying = Filter::attribute("plan").eq("pro") | Filter::attribute("plan").eq("team");
/// let reachable = Filter::attribute("email").exists();
/// let audience = paying & reachable & !Filter::segment(7);
/// assert!(audience.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Filter {
    /// Every filter in the list matches (`{"and": [...]}`).
    And(Vec<Filter>),
    /// At least one filter in the list matches (`{"or": [...]}`).
    Or(Vec<Filter>),
    /// The filter does not match (`{"not": {...}}`).
    Not(Box<Filter>),
    /// The person is in the segment (`{"segment": {"id": 4}}`).
    Segment(SegmentCondition),
    /// A condition on one attribute (`{"attribute": {...}}`).
    Attribute(AttributeCondition),
}

/// Membership of a segment, by the segment's numeric id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SegmentCondition {
    /// The segment id.
    pub id: u64,
}

/// A condition on one attribute: its name and the test applied to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "AttributeWire", into = "AttributeWire")]
pub struct AttributeCondition {
    /// The attribute name (case-sensitive).
    pub field: String,
    /// The test applied to the attribute.
    pub test: AttributeTest,
}

/// The test of an attribute condition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AttributeTest {
    /// The attribute equals the value (`"operator": "eq"`); values are compared as strings.
    Eq(String),
    /// The attribute is set (`"operator": "exists"`, no value).
    Exists,
    /// An operator (or an operator/value shape) the reference does not document, kept as read
    /// so it is written back unchanged. [`Filter::validate`] refuses it.
    Other {
        /// The operator as sent.
        operator: String,
        /// The value as sent, if any.
        value: Option<Value>,
    },
}

/// The JSON form of an attribute condition.
#[derive(Serialize, Deserialize)]
struct AttributeWire {
    field: String,
    operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
}

impl From<AttributeWire> for AttributeCondition {
    fn from(wire: AttributeWire) -> Self {
        let test = match (wire.operator.as_str(), wire.value) {
            ("eq", Some(Value::String(value))) => AttributeTest::Eq(value),
            ("exists", None) => AttributeTest::Exists,
            (_, value) => AttributeTest::Other {
                operator: wire.operator,
                value,
            },
        };
        AttributeCondition {
            field: wire.field,
            test,
        }
    }
}

impl From<AttributeCondition> for AttributeWire {
    fn from(condition: AttributeCondition) -> Self {
        let (operator, value) = match condition.test {
            AttributeTest::Eq(value) => ("eq".to_owned(), Some(Value::String(value))),
            AttributeTest::Exists => ("exists".to_owned(), None),
            AttributeTest::Other { operator, value } => (operator, value),
        };
        AttributeWire {
            field: condition.field,
            operator,
            value,
        }
    }
}

/// The first half of an attribute condition: the attribute is named, the test comes next
/// ([`AttributeBuilder::eq`], [`AttributeBuilder::exists`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an attribute name alone is not a filter: call .eq(...) or .exists()"]
pub struct AttributeBuilder {
    field: String,
}

impl AttributeBuilder {
    /// The attribute equals `value` (Customer.io compares attribute values as strings).
    pub fn eq(self, value: impl Into<String>) -> Filter {
        Filter::Attribute(AttributeCondition {
            field: self.field,
            test: AttributeTest::Eq(value.into()),
        })
    }

    /// The attribute is set on the person.
    pub fn exists(self) -> Filter {
        Filter::Attribute(AttributeCondition {
            field: self.field,
            test: AttributeTest::Exists,
        })
    }
}

impl Filter {
    /// People in the segment with this id.
    pub fn segment(id: u64) -> Self {
        Filter::Segment(SegmentCondition { id })
    }

    /// Starts a condition on the attribute `field`; finish it with `.eq(value)` or `.exists()`.
    pub fn attribute(field: impl Into<String>) -> AttributeBuilder {
        AttributeBuilder {
            field: field.into(),
        }
    }

    /// People matched by every filter in `filters`.
    pub fn and(filters: impl IntoIterator<Item = Filter>) -> Self {
        Filter::And(filters.into_iter().collect())
    }

    /// People matched by at least one filter in `filters`.
    pub fn or(filters: impl IntoIterator<Item = Filter>) -> Self {
        Filter::Or(filters.into_iter().collect())
    }

    /// People not matched by `filter` (the same as `!filter`).
    #[allow(clippy::should_implement_trait)] // `ops::Not` is implemented too; this reads better in lists.
    pub fn not(filter: Filter) -> Self {
        Filter::Not(Box::new(filter))
    }

    /// Checks the filter before it is sent: groups are not empty, attribute names are not
    /// empty, and every attribute test is one the reference documents (`eq` with a value,
    /// `exists` without).
    ///
    /// The error names the JSON path of the first problem, e.g. `filter.and[1].not.attribute`.
    /// Values are never quoted in the message.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_for("app.filter")
    }

    /// [`Filter::validate`], the error naming `operation`.
    pub(crate) fn validate_for(&self, operation: &'static str) -> Result<(), Error> {
        self.validate_at(operation, "filter")
    }

    /// [`Filter::validate`], the error naming `operation` and paths starting at `root`.
    pub(crate) fn validate_at(&self, operation: &'static str, root: &str) -> Result<(), Error> {
        let mut path = String::from(root);
        self.check(&mut path)
            .map_err(|message| Error::invalid(operation, message))
    }

    fn check(&self, path: &mut String) -> Result<(), String> {
        match self {
            Filter::And(list) | Filter::Or(list) => {
                let key = if matches!(self, Filter::And(_)) {
                    "and"
                } else {
                    "or"
                };
                if list.is_empty() {
                    return Err(format!("{path}.{key} is an empty list"));
                }
                for (index, item) in list.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!(".{key}[{index}]"));
                    item.check(path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Filter::Not(inner) => {
                let len = path.len();
                path.push_str(".not");
                inner.check(path)?;
                path.truncate(len);
                Ok(())
            }
            Filter::Segment(_) => Ok(()),
            Filter::Attribute(condition) => {
                if condition.field.trim().is_empty() {
                    return Err(format!("{path}.attribute.field is empty"));
                }
                match &condition.test {
                    AttributeTest::Eq(_) | AttributeTest::Exists => Ok(()),
                    AttributeTest::Other { operator, value } => Err(match operator.as_str() {
                        "eq" => format!("{path}.attribute: operator `eq` needs a string value"),
                        "exists" if value.is_some() => {
                            format!("{path}.attribute: operator `exists` takes no value")
                        }
                        _ => format!(
                            "{path}.attribute.operator is not a documented operator (eq, exists)"
                        ),
                    }),
                }
            }
        }
    }
}

impl ops::BitAnd for Filter {
    type Output = Filter;

    /// `a & b`: both match. An `and` group on the left is extended rather than nested.
    fn bitand(self, rhs: Filter) -> Filter {
        match self {
            Filter::And(mut list) => {
                list.push(rhs);
                Filter::And(list)
            }
            other => Filter::And(vec![other, rhs]),
        }
    }
}

impl ops::BitOr for Filter {
    type Output = Filter;

    /// `a | b`: either matches. An `or` group on the left is extended rather than nested.
    fn bitor(self, rhs: Filter) -> Filter {
        match self {
            Filter::Or(mut list) => {
                list.push(rhs);
                Filter::Or(list)
            }
            other => Filter::Or(vec![other, rhs]),
        }
    }
}

impl ops::Not for Filter {
    type Output = Filter;

    /// `!a`: does not match.
    fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaves_serialise_to_the_documented_json() {
        assert_eq!(
            serde_json::to_value(Filter::segment(4)).unwrap(),
            json!({"segment": {"id": 4}})
        );
        assert_eq!(
            serde_json::to_value(Filter::attribute("plan").eq("pro")).unwrap(),
            json!({"attribute": {"field": "plan", "operator": "eq", "value": "pro"}})
        );
        assert_eq!(
            serde_json::to_value(Filter::attribute("phone").exists()).unwrap(),
            json!({"attribute": {"field": "phone", "operator": "exists"}})
        );
    }

    #[test]
    fn operators_extend_groups_on_the_left() {
        let f = Filter::segment(1) & Filter::segment(2) & Filter::segment(3);
        assert_eq!(
            f,
            Filter::and([Filter::segment(1), Filter::segment(2), Filter::segment(3)])
        );
        let g = Filter::segment(1) | Filter::segment(2) | Filter::segment(3);
        assert_eq!(
            g,
            Filter::or([Filter::segment(1), Filter::segment(2), Filter::segment(3)])
        );
        // A group on the right stays nested: `a & (b | c)`.
        let h = Filter::segment(1) & (Filter::segment(2) | Filter::segment(3));
        assert_eq!(
            serde_json::to_value(h).unwrap(),
            json!({"and": [{"segment": {"id": 1}}, {"or": [{"segment": {"id": 2}}, {"segment": {"id": 3}}]}]})
        );
        assert_eq!(!Filter::segment(9), Filter::not(Filter::segment(9)));
    }

    #[test]
    fn unknown_operators_round_trip_and_fail_validation() {
        let cases = [
            json!({"attribute": {"field": "age", "operator": "gt", "value": "30"}}),
            json!({"attribute": {"field": "age", "operator": "eq", "value": 30}}),
            json!({"attribute": {"field": "age", "operator": "eq"}}),
            json!({"attribute": {"field": "age", "operator": "exists", "value": "x"}}),
        ];
        for case in cases {
            let filter: Filter = serde_json::from_value(case.clone()).unwrap();
            assert!(
                matches!(
                    filter,
                    Filter::Attribute(AttributeCondition {
                        test: AttributeTest::Other { .. },
                        ..
                    })
                ),
                "{case}"
            );
            assert_eq!(serde_json::to_value(&filter).unwrap(), case);
            assert!(filter.validate().is_err(), "{case}");
        }
    }

    #[test]
    fn validation_names_the_path_without_values() {
        let filter = Filter::and([
            Filter::segment(1),
            Filter::not(Filter::or([Filter::attribute(" ").eq("secret-value")])),
        ]);
        let err = filter.validate().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
        let shown = err.to_string();
        assert!(
            shown.contains("filter.and[1].not.or[0].attribute.field is empty"),
            "{shown}"
        );
        assert!(!shown.contains("secret-value"));

        let empty = Filter::not(Filter::and([]));
        assert!(
            empty
                .validate()
                .unwrap_err()
                .to_string()
                .contains("filter.not.and is an empty list")
        );

        let gt: Filter = serde_json::from_value(
            json!({"or": [{"segment": {"id": 3}}, {"attribute": {"field": "age", "operator": "gt", "value": "3"}}]}),
        )
        .unwrap();
        assert!(
            gt.validate()
                .unwrap_err()
                .to_string()
                .contains("filter.or[1].attribute.operator is not a documented operator")
        );
    }

    #[test]
    fn malformed_json_is_refused() {
        // Two keys at one level, unknown leaf, `not` holding a list.
        for bad in [
            json!({"segment": {"id": 1}, "and": []}),
            json!({"event": {"name": "x"}}),
            json!({"not": [{"segment": {"id": 1}}]}),
            json!({"segment": {"id": "one"}}),
        ] {
            assert!(
                serde_json::from_value::<Filter>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
