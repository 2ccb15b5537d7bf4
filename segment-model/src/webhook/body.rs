//! The body of a request from a Segment Webhooks destination, decoded item by item.
//!
//! A body has one of three shapes ([`BodyShape`]):
//!
//! - **one event object**: Webhooks (classic), and Webhooks (Actions) without batching;
//! - **a bare JSON array of events**: Webhooks (Actions) with batching enabled;
//! - **a `{"batch": [...]}` envelope**: the Tracking API's `/v1/batch` body, which a relay or
//!   a replay tool may forward as it is. The envelope's `context`, `integrations` and `sentAt`
//!   apply to every item by the rules of [`Batch::apply_envelope`].
//!
//! An object is an envelope when it has a `batch` key and no `type` key; any other object is
//! one event.
//!
//! [`WebhookBody::from_slice`] reads the body once, keeping each array item as its raw text,
//! then decodes the items one by one: an item that does not decode becomes a
//! [`WebhookItemError`] naming its index (with the item's exact text, to park it or retry it)
//! and does not cost its neighbours. Only a body that cannot be used at all fails as a whole,
//! with a [`WebhookBodyError`]: empty, not JSON, neither an object nor an array, an empty
//! array, an envelope whose `batch` is not an array or whose own fields do not decode, more
//! items than [`WebhookLimits`] allow, or a lone event that does not decode.
//!
//! No error of this module shows a value of the body: they name indexes, JSON paths, JSON
//! types and positions.
//!
//! ```
//! use segment_model::webhook::{BodyShape, WebhookBody};
//!
//! let body = br#"[
//!   {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
//!   {"type": "track", "userId": "u1", "event": 42},
//!   {"type": "track", "userId": "u1", "event": "Report Exported"}
//! ]"#;
//! let decoded = WebhookBody::from_slice(body)?;
//! assert_eq!(decoded.shape, BodyShape::Array);
//! assert_eq!(decoded.item_count(), 3);
//! assert!(!decoded.is_complete());
//!
//! let indexes: Vec<usize> = decoded.iter().map(|(index, _)| index).collect();
//! assert_eq!(indexes, [0, 2]);
//! let bad = &decoded.errors[0];
//! assert_eq!((bad.index, bad.error.path()), (1, Some("event")));
//! assert_eq!(bad.to_string(), "item 1 does not decode"); // the cause: `bad.error`
//! # Ok::<(), segment_model::webhook::WebhookBodyError>(())
//! ```

use std::fmt;
use std::num::NonZeroUsize;

use serde::de::{Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::batch::Batch;
use crate::error::{Error, JsonErrorCategory, JsonType};
use crate::message::Message;

/// Which of the three body shapes a request had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyShape {
    /// One event object (Webhooks classic; Webhooks (Actions) without batching).
    Event,
    /// A bare JSON array of events (Webhooks (Actions) with batching).
    Array,
    /// A `{"batch": [...]}` envelope (the Tracking API's `/v1/batch` body).
    Envelope,
}

impl fmt::Display for BodyShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Event => "one event",
            Self::Array => "an array of events",
            Self::Envelope => "a batch envelope",
        })
    }
}

/// Limits a body must respect before its items are decoded.
///
/// ```
/// use std::num::NonZeroUsize;
/// use segment_model::webhook::WebhookLimits;
///
/// let limits = WebhookLimits::default();
/// assert_eq!(limits.max_items(), WebhookLimits::DEFAULT_MAX_ITEMS);
/// let small = limits.with_max_items(NonZeroUsize::new(100).expect("not zero"));
/// assert_eq!(small.max_items().get(), 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WebhookLimits {
    max_items: NonZeroUsize,
}

impl WebhookLimits {
    /// The default item limit: 4000, the largest batch Segment documents for Webhooks
    /// (Actions) (its default batch size is 1000, its maximum 4000).
    ///
    /// A lower default would refuse batches Segment legitimately sends, and Segment does not
    /// retry a 400, so those events would be lost. The Tracking API's own cap (2500 items per
    /// `/v1/batch` request) is below this, so forwarded envelopes fit too. Lower it when your
    /// destination is configured with smaller batches and you want a tighter bound on the work
    /// one request can cause; the request's size in bytes is for the HTTP layer to bound.
    pub const DEFAULT_MAX_ITEMS: NonZeroUsize = match NonZeroUsize::new(4000) {
        Some(limit) => limit,
        None => NonZeroUsize::MIN,
    };

    /// Sets the largest number of items a body may hold. A body with more is refused with
    /// [`WebhookBodyError::TooManyItems`]. Zero is not a limit one can ask for: it would refuse
    /// every body.
    #[must_use]
    pub const fn with_max_items(mut self, max_items: NonZeroUsize) -> Self {
        self.max_items = max_items;
        self
    }

    /// The largest number of items a body may hold.
    pub const fn max_items(&self) -> NonZeroUsize {
        self.max_items
    }
}

impl Default for WebhookLimits {
    fn default() -> Self {
        Self {
            max_items: Self::DEFAULT_MAX_ITEMS,
        }
    }
}

/// A decoded webhook body: the items that decoded and the items that did not, each with its
/// index in the body.
///
/// Indexes count the items of the array (or of the envelope's `batch`) from 0; a lone event
/// has index 0. `messages` and `errors` are both in body order, and together they hold every
/// index exactly once. [`WebhookBody::items`] walks them merged, in body order.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WebhookBody {
    /// The shape the body had.
    pub shape: BodyShape,
    /// The messages that decoded, with their index, in body order. For an envelope, the
    /// envelope's `context`, `integrations` and `sentAt` have been applied to each.
    pub messages: Vec<(usize, Message)>,
    /// The items that did not decode, in body order.
    pub errors: Vec<WebhookItemError>,
    /// For [`BodyShape::Envelope`], the envelope's own fields (`context`, `integrations`,
    /// `sentAt`, `writeKey`, `messageId` and unmodelled keys); its `batch` is empty, the items
    /// being in `messages` and `errors`. `None` for the other shapes.
    pub envelope: Option<Batch>,
}

impl WebhookBody {
    /// Decodes a webhook body with the default [`WebhookLimits`].
    ///
    /// ```
    /// use segment_model::webhook::{BodyShape, WebhookBody, WebhookBodyError};
    ///
    /// // One event.
    /// let one = WebhookBody::from_slice(br#"{"type":"track","userId":"u1","event":"A"}"#)?;
    /// assert_eq!((one.shape, one.len()), (BodyShape::Event, 1));
    ///
    /// // A batch envelope: its context applies to every item.
    /// let envelope = WebhookBody::from_slice(br#"{
    ///   "batch": [{"type": "track", "userId": "u1", "event": "A"}],
    ///   "context": {"library": {"name": "analytics-go", "version": "3.3.0"}}
    /// }"#)?;
    /// let (_, message) = envelope.iter().next().expect("one message");
    /// assert!(message.context().is_some());
    ///
    /// // Whole-body failures say what and where, never the content.
    /// let error = WebhookBody::from_slice(b"[]").unwrap_err();
    /// assert!(matches!(error, WebhookBodyError::EmptyArray { shape: BodyShape::Array }));
    /// let error = WebhookBody::from_slice(b"{\"type\": \"track\",").unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "the body is not JSON: unexpected end of input at line 1, column 17"
    /// );
    /// # Ok::<(), WebhookBodyError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`WebhookBodyError`] when the body cannot be used as a whole; see the type.
    pub fn from_slice(body: &[u8]) -> Result<Self, WebhookBodyError> {
        Self::from_slice_with(body, WebhookLimits::default())
    }

    /// Decodes a webhook body with the given limits. See [`WebhookBody::from_slice`].
    ///
    /// # Errors
    ///
    /// A [`WebhookBodyError`] when the body cannot be used as a whole; see the type.
    pub fn from_slice_with(body: &[u8], limits: WebhookLimits) -> Result<Self, WebhookBodyError> {
        if body.iter().all(|byte| is_json_whitespace(*byte)) {
            return Err(WebhookBodyError::Empty);
        }
        let max_items = limits.max_items.get();
        let mut de = serde_json::Deserializer::from_slice(body);
        let top = (&mut de)
            .deserialize_any(TopVisitor { max_items })
            .map_err(|error| WebhookBodyError::not_json(&error))?;
        de.end()
            .map_err(|error| WebhookBodyError::not_json(&error))?;
        match top {
            Top::Other(found) => Err(WebhookBodyError::UnexpectedShape { found }),
            Top::Array(items) => Self::from_items(BodyShape::Array, items, limits, None),
            Top::Object {
                batch: Some(batch),
                rest,
            } if !rest.contains_key("type") => {
                let items = envelope_items(batch, max_items)?;
                let envelope = Batch::envelope_from_map(rest)
                    .map_err(|source| WebhookBodyError::Envelope { source })?;
                Self::from_items(BodyShape::Envelope, items, limits, Some(envelope))
            }
            Top::Object { batch, mut rest } => {
                if let Some(batch) = batch {
                    // An event that happens to carry a `batch` key keeps it, like any other
                    // key it has.
                    let value = serde_json::from_str(batch.get())
                        .map_err(|error| WebhookBodyError::not_json(&error))?;
                    rest.insert("batch".to_owned(), value);
                }
                let message = Message::from_value(Value::Object(rest))
                    .map_err(|source| WebhookBodyError::Event { source })?;
                Ok(Self {
                    shape: BodyShape::Event,
                    messages: vec![(0, message)],
                    errors: Vec::new(),
                    envelope: None,
                })
            }
        }
    }

    /// Decodes the collected items of an array or an envelope, one by one.
    fn from_items(
        shape: BodyShape,
        items: Collected<'_>,
        limits: WebhookLimits,
        envelope: Option<Batch>,
    ) -> Result<Self, WebhookBodyError> {
        let limit = limits.max_items.get();
        if items.count > limit {
            return Err(WebhookBodyError::TooManyItems {
                count: items.count,
                limit,
            });
        }
        if items.count == 0 {
            return Err(WebhookBodyError::EmptyArray { shape });
        }
        let mut messages = Vec::with_capacity(items.items.len());
        let mut errors = Vec::new();
        for (index, raw) in items.items.into_iter().enumerate() {
            match Message::from_str(raw.get()) {
                Ok(mut message) => {
                    if let Some(envelope) = &envelope {
                        envelope.apply_envelope_to(&mut message);
                    }
                    messages.push((index, message));
                }
                Err(error) => errors.push(WebhookItemError {
                    index,
                    error,
                    raw: raw.to_owned(),
                }),
            }
        }
        Ok(Self {
            shape,
            messages,
            errors,
            envelope,
        })
    }

    /// The number of messages that decoded.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// `true` when no item decoded (every item of the body is in [`WebhookBody::errors`]).
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The number of items the body held: decoded messages plus item errors.
    pub fn item_count(&self) -> usize {
        self.messages.len() + self.errors.len()
    }

    /// `true` when every item decoded.
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty()
    }

    /// The decoded messages with their index, in body order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (usize, &Message)> + '_ {
        self.messages
            .iter()
            .map(|(index, message)| (*index, message))
    }

    /// Every item in body order: the message, or why it did not decode.
    pub fn items(&self) -> BodyItems<'_> {
        BodyItems {
            messages: self.messages.iter().peekable(),
            errors: self.errors.iter().peekable(),
        }
    }

    /// The decoded messages, in body order, without their indexes.
    pub fn into_messages(self) -> Vec<Message> {
        self.messages
            .into_iter()
            .map(|(_, message)| message)
            .collect()
    }
}

impl IntoIterator for WebhookBody {
    type Item = (usize, Message);
    type IntoIter = std::vec::IntoIter<(usize, Message)>;

    /// The decoded messages with their index, in body order (the item errors are dropped).
    fn into_iter(self) -> Self::IntoIter {
        self.messages.into_iter()
    }
}

/// Every item of a [`WebhookBody`] in body order, from [`WebhookBody::items`].
#[derive(Debug, Clone)]
pub struct BodyItems<'a> {
    messages: std::iter::Peekable<std::slice::Iter<'a, (usize, Message)>>,
    errors: std::iter::Peekable<std::slice::Iter<'a, WebhookItemError>>,
}

impl<'a> Iterator for BodyItems<'a> {
    type Item = (usize, Result<&'a Message, &'a WebhookItemError>);

    fn next(&mut self) -> Option<Self::Item> {
        let message_first = match (self.messages.peek(), self.errors.peek()) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((message_index, _)), Some(error)) => *message_index < error.index,
        };
        if message_first {
            self.messages
                .next()
                .map(|(index, message)| (*index, Ok(message)))
        } else {
            self.errors.next().map(|error| (error.index, Err(error)))
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.messages.len() + self.errors.len();
        (left, Some(left))
    }
}

impl ExactSizeIterator for BodyItems<'_> {}

/// One item of an array or envelope body that did not decode.
///
/// `Display` and `Debug` show the index and the error, never the item's content.
#[derive(Clone)]
#[non_exhaustive]
pub struct WebhookItemError {
    /// The item's position in the array (or in the envelope's `batch`), from 0.
    pub index: usize,
    /// Why it did not decode; its path is relative to the item.
    pub error: Error,
    /// The item's text exactly as it was in the body, so it can be parked or retried.
    pub raw: Box<RawValue>,
}

impl fmt::Debug for WebhookItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookItemError")
            .field("index", &self.index)
            .field("error", &self.error)
            .field("raw", &format_args!("<{} bytes>", self.raw.get().len()))
            .finish()
    }
}

impl fmt::Display for WebhookItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "item {} does not decode", self.index)
    }
}

impl std::error::Error for WebhookItemError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Why a webhook body cannot be used as a whole.
///
/// `Display` names what was wrong and where (a line and column, an index count, a JSON path),
/// never a value from the body.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookBodyError {
    /// The body is empty or holds only whitespace.
    #[error("the body is empty")]
    Empty,

    /// The body is not JSON (a syntax error, trailing characters, or it ends early).
    #[error("the body is not JSON: {category} at line {line}, column {column}")]
    NotJson {
        /// What kind of problem the parser reported.
        category: JsonErrorCategory,
        /// 1-based line of the first error.
        line: usize,
        /// Column of the first error, as serde_json counts it (1-based; 0 when the body ends
        /// right after a newline).
        column: usize,
    },

    /// The body is JSON but neither an object nor an array.
    #[error("the body is {found}, not an event object, an array of events or a batch envelope")]
    UnexpectedShape {
        /// The JSON type of the body.
        found: JsonType,
    },

    /// The array (or the envelope's `batch`) holds no item.
    #[error("the body holds no events: {}", empty_array(*shape))]
    EmptyArray {
        /// [`BodyShape::Array`] or [`BodyShape::Envelope`].
        shape: BodyShape,
    },

    /// The body is an envelope whose `batch` is not an array.
    #[error("`batch`: expected an array, found {found}")]
    BatchNotArray {
        /// The JSON type of `batch`.
        found: JsonType,
    },

    /// The envelope's own fields (`context`, `integrations`, `sentAt`, `writeKey`,
    /// `messageId`) do not decode; they concern every item, so no item is decoded.
    #[error("the batch envelope does not decode")]
    Envelope {
        /// What was wrong; its path is relative to the envelope.
        #[source]
        source: Error,
    },

    /// The body holds more items than [`WebhookLimits::max_items`] allows.
    #[error("the body holds {count} items; the limit is {limit}")]
    TooManyItems {
        /// How many items the body holds.
        count: usize,
        /// The limit in force.
        limit: usize,
    },

    /// The body is one event, and it does not decode.
    #[error("the event does not decode")]
    Event {
        /// What was wrong; its path is relative to the event.
        #[source]
        source: Error,
    },
}

impl WebhookBodyError {
    /// The JSON path of the value at fault, when the error concerns one value: relative to
    /// the body for a lone event or the envelope, `batch` when the envelope's items are not an
    /// array.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Envelope { source } | Self::Event { source } => source.path(),
            Self::BatchNotArray { .. } => Some("batch"),
            Self::Empty
            | Self::NotJson { .. }
            | Self::UnexpectedShape { .. }
            | Self::EmptyArray { .. }
            | Self::TooManyItems { .. } => None,
        }
    }

    fn not_json(error: &serde_json::Error) -> Self {
        Self::NotJson {
            category: JsonErrorCategory::of(error),
            line: error.line(),
            column: error.column(),
        }
    }
}

fn empty_array(shape: BodyShape) -> &'static str {
    match shape {
        BodyShape::Envelope => "`batch` is an empty array",
        _ => "it is an empty array",
    }
}

/// The four bytes JSON counts as whitespace.
fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// The items of an array: the raw text of the first `max_items`, and how many there were in
/// all (items past the limit are only counted, not kept).
struct Collected<'a> {
    items: Vec<&'a RawValue>,
    count: usize,
}

fn collect_items<'de, A: SeqAccess<'de>>(
    mut seq: A,
    max_items: usize,
) -> Result<Collected<'de>, A::Error> {
    let mut items = Vec::new();
    while items.len() < max_items {
        match seq.next_element::<&'de RawValue>()? {
            Some(item) => items.push(item),
            None => {
                return Ok(Collected {
                    count: items.len(),
                    items,
                });
            }
        }
    }
    let mut count = items.len();
    while seq.next_element::<IgnoredAny>()?.is_some() {
        count = count.saturating_add(1);
    }
    Ok(Collected { items, count })
}

/// What the top level of a body is, read in one pass.
enum Top<'a> {
    Array(Collected<'a>),
    Object {
        /// The `batch` value's raw text, if the object has that key.
        batch: Option<&'a RawValue>,
        /// Every other key.
        rest: Map<String, Value>,
    },
    Other(JsonType),
}

struct TopVisitor {
    max_items: usize,
}

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Segment event, an array of events or a batch envelope")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        collect_items(seq, self.max_items).map(Top::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut batch = None;
        let mut rest = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "batch" {
                batch = Some(map.next_value::<&'de RawValue>()?);
            } else {
                let value = map.next_value::<Value>()?;
                rest.insert(key, value);
            }
        }
        Ok(Top::Object { batch, rest })
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Top::Other(JsonType::Bool))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Top::Other(JsonType::Number))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Top::Other(JsonType::Number))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Top::Other(JsonType::Number))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Top::Other(JsonType::String))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Top::Other(JsonType::Null))
    }
}

/// The items of an envelope's `batch`, which must be an array. The body has already been read
/// as valid JSON, so this second look at the `batch` text only finds its type and items.
fn envelope_items(batch: &RawValue, max_items: usize) -> Result<Collected<'_>, WebhookBodyError> {
    let mut de = serde_json::Deserializer::from_str(batch.get());
    match (&mut de).deserialize_any(BatchVisitor { max_items }) {
        Ok(Ok(items)) => Ok(items),
        Ok(Err(found)) => Err(WebhookBodyError::BatchNotArray { found }),
        Err(error) => Err(WebhookBodyError::not_json(&error)),
    }
}

/// Reads an envelope's `batch`: its items when it is an array, else its JSON type.
struct BatchVisitor {
    max_items: usize,
}

impl<'de> Visitor<'de> for BatchVisitor {
    type Value = Result<Collected<'de>, JsonType>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        collect_items(seq, self.max_items).map(Ok)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err(JsonType::Object))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(JsonType::Bool))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(JsonType::Number))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(JsonType::Number))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(JsonType::Number))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(JsonType::String))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(JsonType::Null))
    }
}
