//! [`Batch`]: the `{"batch": [...]}` envelope of the Tracking API's `/v1/batch` endpoint.
//!
//! Two ways to decode:
//!
//! - strict ([`Batch::from_slice`], [`Batch::from_value`]): the first bad item fails the whole
//!   batch with [`Error::BatchItem`], which names the item's index;
//! - lenient ([`Batch::from_slice_lenient`], [`Batch::from_value_lenient`]): the good items are
//!   kept in order and every bad item is reported as a [`BatchItemError`] with its index, its
//!   error and its raw JSON, so nothing is lost. Only a broken envelope (not JSON, not an
//!   object, no `batch` array) fails the lenient parse.
//!
//! [`Batch::from_array_slice_lenient`] reads the bare JSON array that batching Webhooks
//! (Actions) destinations deliver, with the same per-item leniency.
//!
//! A batch's top-level `context`, `integrations` and `sentAt` apply to every item; see
//! [`Batch::apply_envelope`].
//!
//! ```
//! use segment_model::Batch;
//!
//! let body = br#"{
//!   "batch": [
//!     {"type": "track", "userId": "u1", "event": "A"},
//!     {"type": "track", "userId": "u1", "event": 7},
//!     {"type": "identify", "userId": "u1", "traits": {}}
//!   ],
//!   "context": {"library": {"name": "analytics-go", "version": "3.3.0"}}
//! }"#;
//! let parsed = Batch::from_slice_lenient(body)?;
//! assert_eq!(parsed.batch.batch.len(), 2);
//! assert_eq!(parsed.errors[0].index, 1);
//! assert_eq!(parsed.errors[0].error.path(), Some("event"));
//! # Ok::<(), segment_model::Error>(())
//! ```

use std::fmt;

use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::context::Context;
use crate::error::decode::{self, Path};
use crate::error::{Error, JsonType};
use crate::integrations::Integrations;
use crate::message::{Message, WriteKey};
use crate::timestamp::Timestamp;

/// A `/v1/batch` request body.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Batch {
    /// `batch`: the messages, in order.
    pub batch: Vec<Message>,
    /// `context`: applies to every item (item keys win).
    pub context: Option<Context>,
    /// `integrations`: merged into every item's own object (item keys win).
    pub integrations: Option<Integrations>,
    /// `sentAt`: when the SDK sent the request.
    pub sent_at: Option<Timestamp>,
    /// `writeKey`: the source write key when sent in the body.
    pub write_key: Option<WriteKey>,
    /// `messageId`: a batch-level id some SDKs (Go) send.
    pub message_id: Option<String>,
    /// Keys the envelope does not model, and modelled keys sent as `null`, kept verbatim.
    pub extra: Map<String, Value>,
}

/// A batch item that failed to decode during a lenient parse.
///
/// `Display` names the index; the item's own error is its `source()`. `Debug` shows the index
/// and the error. Neither shows the raw item.
#[derive(Clone)]
#[non_exhaustive]
pub struct BatchItemError {
    /// Position of the item in the input `batch` array.
    pub index: usize,
    /// Why it failed; paths are relative to the item.
    pub error: Error,
    /// The item exactly as received, so it can be dead-lettered or retried.
    pub raw: Value,
}

impl fmt::Debug for BatchItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchItemError")
            .field("index", &self.index)
            .field("error", &self.error)
            .field("raw", &format_args!("<{} JSON>", JsonType::of(&self.raw)))
            .finish()
    }
}

impl fmt::Display for BatchItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`batch[{}]` does not decode", self.index)
    }
}

impl std::error::Error for BatchItemError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The result of a lenient batch parse: the good items, and one error per bad item.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LenientBatch {
    /// The envelope, holding the items that decoded, in input order.
    pub batch: Batch,
    /// The items that did not decode, in input order.
    pub errors: Vec<BatchItemError>,
}

impl LenientBatch {
    /// `true` when every item decoded.
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty()
    }
}

impl Batch {
    /// The JSON keys the envelope models.
    pub const KEYS: &'static [&'static str] = &[
        "batch",
        "context",
        "integrations",
        "sentAt",
        "writeKey",
        "messageId",
    ];

    /// A batch holding `messages` and no envelope fields.
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            batch: messages,
            ..Self::default()
        }
    }

    /// Decodes a batch strictly from JSON bytes: any bad item fails it.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let value: Value = serde_json::from_slice(bytes).map_err(Error::from_json)?;
        Self::from_value(value)
    }

    /// Decodes a batch strictly from a JSON string. See [`Batch::from_slice`].
    #[allow(clippy::should_implement_trait)] // Also implemented; this inherent form mirrors `Message`.
    pub fn from_str(text: &str) -> Result<Self, Error> {
        Self::from_slice(text.as_bytes())
    }

    /// Decodes a batch strictly from a JSON value.
    pub fn from_value(value: Value) -> Result<Self, Error> {
        let (mut batch, items) = Self::decode_envelope(value)?;
        batch.batch = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                Message::from_value(item).map_err(|source| Error::BatchItem {
                    index,
                    source: Box::new(source),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(batch)
    }

    /// Decodes a batch from JSON bytes, keeping the good items and reporting the bad ones.
    pub fn from_slice_lenient(bytes: &[u8]) -> Result<LenientBatch, Error> {
        let value: Value = serde_json::from_slice(bytes).map_err(Error::from_json)?;
        Self::from_value_lenient(value)
    }

    /// Decodes a batch from a JSON value, keeping the good items and reporting the bad ones.
    pub fn from_value_lenient(value: Value) -> Result<LenientBatch, Error> {
        let (batch, items) = Self::decode_envelope(value)?;
        Ok(Self::decode_items_lenient(batch, items))
    }

    /// Decodes a bare JSON array of messages, keeping the good items and reporting the bad
    /// ones. Webhooks (Actions) with batching enabled deliver this shape instead of the
    /// `{"batch": [...]}` envelope; the result has no envelope fields.
    ///
    /// ```
    /// use segment_model::Batch;
    ///
    /// let body = br#"[{"type":"track","userId":"u","event":"A"},{"type":"nope"}]"#;
    /// let parsed = Batch::from_array_slice_lenient(body)?;
    /// assert_eq!(parsed.batch.len(), 1);
    /// assert_eq!(parsed.errors[0].index, 1);
    /// # Ok::<(), segment_model::Error>(())
    /// ```
    pub fn from_array_slice_lenient(bytes: &[u8]) -> Result<LenientBatch, Error> {
        let value: Value = serde_json::from_slice(bytes).map_err(Error::from_json)?;
        Self::from_array_value_lenient(value)
    }

    /// Like [`Batch::from_array_slice_lenient`], from a JSON value.
    pub fn from_array_value_lenient(value: Value) -> Result<LenientBatch, Error> {
        match value {
            Value::Array(items) => Ok(Self::decode_items_lenient(Self::default(), items)),
            other => Err(Error::WrongType {
                path: "batch request".to_owned(),
                expected: "an array",
                found: JsonType::of(&other),
            }),
        }
    }

    fn decode_items_lenient(mut batch: Batch, items: Vec<Value>) -> LenientBatch {
        let mut errors = Vec::new();
        batch.batch.reserve(items.len());
        for (index, item) in items.into_iter().enumerate() {
            // Decoding consumes the value; the copy is what a failed item is reported with.
            let raw = item.clone();
            match Message::from_value(item) {
                Ok(message) => batch.batch.push(message),
                Err(error) => errors.push(BatchItemError { index, error, raw }),
            }
        }
        LenientBatch { batch, errors }
    }

    /// Decodes the envelope, returning it (with an empty `batch`) and the raw items.
    fn decode_envelope(value: Value) -> Result<(Self, Vec<Value>), Error> {
        let root = Path::Root;
        let mut map = match value {
            Value::Object(map) => map,
            other => {
                return Err(Error::WrongType {
                    path: "batch request".to_owned(),
                    expected: "an object",
                    found: JsonType::of(&other),
                });
            }
        };
        let items = match map.remove("batch") {
            Some(Value::Array(items)) => items,
            Some(other) => return Err(root.key("batch").wrong_type("an array", &other)),
            None => {
                return Err(Error::MissingField {
                    path: "batch".to_owned(),
                });
            }
        };
        let mut batch = Self::envelope_from_map(map)?;
        batch.batch.reserve(items.len());
        Ok((batch, items))
    }

    /// Decodes the envelope fields of an object whose `batch` key has been taken out; the
    /// result has no items. Shared with the webhook body decoder.
    pub(crate) fn envelope_from_map(mut map: Map<String, Value>) -> Result<Self, Error> {
        let root = Path::Root;
        Ok(Self {
            batch: Vec::new(),
            context: decode::take_strict(&mut map, "context", &root)?,
            integrations: decode::take_strict(&mut map, "integrations", &root)?,
            sent_at: decode::take_strict(&mut map, "sentAt", &root)?,
            write_key: decode::take_strict(&mut map, "writeKey", &root)?,
            message_id: decode::take_strict(&mut map, "messageId", &root)?,
            extra: map,
        })
    }

    fn is_set(&self, key: &str) -> bool {
        match key {
            "batch" => true,
            "context" => self.context.is_some(),
            "integrations" => self.integrations.is_some(),
            "sentAt" => self.sent_at.is_some(),
            "writeKey" => self.write_key.is_some(),
            "messageId" => self.message_id.is_some(),
            _ => false,
        }
    }

    /// Applies the envelope's `context`, `integrations` and `sentAt` to every item, keeping
    /// the envelope itself unchanged.
    ///
    /// For each item: a missing `context` becomes a copy of the batch's; an existing one gets
    /// every top-level context key it lacks (its own keys win, nested objects are not merged);
    /// `integrations` are merged key by key, the item's keys winning (Segment documents the
    /// merge but not the precedence; the more specific item is taken to win); a missing
    /// `sentAt` is set to the batch's. An item that sent one of these keys as `null` keeps
    /// its `null`.
    pub fn apply_envelope(&mut self) {
        let mut items = std::mem::take(&mut self.batch);
        for message in &mut items {
            self.apply_envelope_to(message);
        }
        self.batch = items;
    }

    /// Applies this envelope's `context`, `integrations` and `sentAt` to one message, by the
    /// rules of [`Batch::apply_envelope`]. Shared with the webhook body decoder.
    pub(crate) fn apply_envelope_to(&self, message: &mut Message) {
        let common = message.common_mut();
        if let Some(batch_context) = self.context.as_ref() {
            if let Some(own) = common.context.as_mut() {
                own.fill_missing_from(batch_context);
            } else if !common.extra.contains_key("context") {
                common.context = Some(batch_context.clone());
            }
        }
        if let Some(batch_integrations) = self.integrations.as_ref() {
            if let Some(own) = common.integrations.as_mut() {
                own.fill_missing_from(batch_integrations);
            } else if !common.extra.contains_key("integrations") {
                common.integrations = Some(batch_integrations.clone());
            }
        }
        if let Some(batch_sent_at) = self.sent_at.as_ref()
            && common.sent_at.is_none()
            && !common.extra.contains_key("sentAt")
        {
            common.sent_at = Some(batch_sent_at.clone());
        }
    }

    /// The items with the envelope applied (see [`Batch::apply_envelope`]).
    pub fn into_messages(mut self) -> Vec<Message> {
        self.apply_envelope();
        self.batch
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// `true` when there are no items.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

impl Serialize for Batch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("batch", &self.batch)?;
        if let Some(context) = &self.context {
            map.serialize_entry("context", context)?;
        }
        if let Some(integrations) = &self.integrations {
            map.serialize_entry("integrations", integrations)?;
        }
        if let Some(sent_at) = &self.sent_at {
            map.serialize_entry("sentAt", sent_at)?;
        }
        if let Some(write_key) = &self.write_key {
            map.serialize_entry("writeKey", write_key)?;
        }
        if let Some(message_id) = &self.message_id {
            map.serialize_entry("messageId", message_id)?;
        }
        decode::serialize_extra(&mut map, &self.extra, |key| self.is_set(key))?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Batch::from_value(value).map_err(serde::de::Error::custom)
    }
}

impl FromIterator<Message> for Batch {
    fn from_iter<I: IntoIterator<Item = Message>>(iter: I) -> Self {
        Batch::new(iter.into_iter().collect())
    }
}
