//! Signature check for requests sent by Segment's Webhooks destinations.
//!
//! When a shared secret is configured, Segment sends an `X-Signature` header holding the hex
//! encoded HMAC-SHA1 of the signed content, keyed by the secret. What "the signed content" is
//! depends on the destination:
//!
//! - **Webhooks (classic)** sends one event per request and signs the request body exactly as
//!   sent.
//! - **Webhooks (Actions)** signs `JSON.stringify(data)`. Unbatched, `data` is the body itself.
//!   Batched, the body is a JSON array and only its **first element** is signed; because the body
//!   is produced by the same serialiser, the signed bytes are exactly that element's text inside
//!   the body. The other elements of a batch are **not** covered by the signature: protect them
//!   with TLS and, if you can, a secret custom header.
//!
//! [`SignedContent`] selects between the two; [`SignedContent::Auto`] (the default) signs a body
//! whose first non-whitespace byte is `[` the batched way and any other body the whole-body way.
//!
//! The check is a pure function over the header value and the raw body bytes: verify **before**
//! parsing the body into messages, and never re-serialise a parsed value to verify it (key order,
//! number formatting and string escaping may differ from the sender's).
//!
//! Header format: the reference documents lowercase hex, 40 characters. This module also accepts
//! uppercase (or mixed-case) hex: the hex text is decoded to the 20 MAC bytes and those bytes are
//! compared in constant time, so the letter case carries no information and accepting it does not
//! weaken the check. Surrounding spaces and tabs (HTTP optional whitespace) are ignored.
//!
//! ```
//! use segment_model::signature::{SharedSecret, WebhookVerifier, sign};
//!
//! let secret = SharedSecret::new("s3cr3t");
//! let body = br#"{"type":"track","event":"Audience Entered","userId":"usr_1"}"#;
//! // What Segment would send in `X-Signature`:
//! let header = sign(&secret, body);
//!
//! let verifier = WebhookVerifier::new(secret);
//! assert!(verifier.verify(Some(header.as_bytes()), body).is_ok());
//! assert!(verifier.verify(Some(header.as_bytes()), b"{}").is_err());
//! ```

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::de::{Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;
use sha1::Sha1;

/// The kind of JSON error found in a body; shared with [`crate::Error::Json`].
pub use crate::error::JsonErrorCategory;

/// The name of the header carrying the signature (`X-Signature`; HTTP header names are
/// case-insensitive).
pub const SIGNATURE_HEADER: &str = "X-Signature";

/// Number of bytes in an HMAC-SHA1 tag.
const MAC_LEN: usize = 20;

/// Number of hex characters in a well-formed signature header.
pub const SIGNATURE_HEX_LEN: usize = MAC_LEN * 2;

type HmacSha1 = Hmac<Sha1>;

/// The shared secret configured on a Segment Webhooks destination.
///
/// Its `Debug` and `Display` never show the value.
#[derive(Clone)]
pub struct SharedSecret(Box<[u8]>);

impl SharedSecret {
    /// Wraps a shared secret. The secret's UTF-8 bytes are the HMAC key, as Segment uses them.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into().into_bytes().into_boxed_slice())
    }

    /// Wraps a shared secret given as raw key bytes.
    pub fn from_bytes(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into().into_boxed_slice())
    }

    fn mac(&self) -> HmacSha1 {
        // HMAC accepts keys of any length (long keys are hashed, short ones padded), so
        // `new_from_slice` cannot fail for HMAC-SHA1; the fallback is never taken.
        HmacSha1::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC-SHA1 accepts keys of every length"))
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

impl fmt::Display for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SharedSecret {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

impl From<&str> for SharedSecret {
    fn from(secret: &str) -> Self {
        Self::new(secret)
    }
}

/// Which bytes of the request body the signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignedContent {
    /// Decide from the body: a body whose first non-whitespace byte is `[` is a batch and only
    /// its first element is signed; any other body is signed whole. Right for both Webhooks
    /// (classic) and Webhooks (Actions), batched or not. The one case it gets wrong is an
    /// unbatched Actions mapping whose `data` is itself a JSON array (then the whole array is
    /// signed): such requests fail the check, never pass it wrongly; choose
    /// [`SignedContent::WholeBody`] for them.
    #[default]
    Auto,
    /// The whole body, byte for byte (Webhooks classic, and Webhooks (Actions) unbatched).
    WholeBody,
    /// The body must be a JSON array; the signature covers the exact text of its first element
    /// (Webhooks (Actions) with batching enabled).
    FirstArrayElement,
}

/// Why a signature check failed.
///
/// No variant carries the secret, the header value or any part of the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The request has no `X-Signature` header.
    #[error("the X-Signature header is missing")]
    MissingHeader,
    /// The header is present but is not 40 hex characters.
    #[error("the X-Signature header is malformed: {reason}")]
    MalformedHeader {
        /// What was wrong with it.
        reason: MalformedReason,
    },
    /// The header is well formed but does not match the signed content.
    #[error("the X-Signature header does not match the request body")]
    Mismatch,
    /// The signed content has to be extracted from a JSON array, but the body is not valid JSON.
    #[error("the body is not valid JSON (line {line}, column {column}): {category}")]
    BodyNotJson {
        /// Line of the first error, 1-based.
        line: usize,
        /// Column of the first error, 1-based.
        column: usize,
        /// What kind of error the JSON parser reported.
        category: JsonErrorCategory,
    },
    /// [`SignedContent::FirstArrayElement`] was requested but the body is not a JSON array.
    #[error("the body is not a JSON array, so it has no first event to check")]
    NotABatch,
    /// The body is an empty JSON array: there is no first event to check.
    #[error("the body is an empty JSON array, so it has no first event to check")]
    EmptyBatch,
}

/// What was wrong with a malformed `X-Signature` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedReason {
    /// The value (after trimming whitespace) is not 40 characters long.
    WrongLength {
        /// The length that was found, in bytes.
        found: usize,
    },
    /// The value contains a byte that is not a hex digit.
    NotHex {
        /// Zero-based byte offset of the first offending byte (after trimming whitespace).
        index: usize,
    },
}

impl fmt::Display for MalformedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongLength { found } => write!(
                f,
                "expected {SIGNATURE_HEX_LEN} hex characters, found {found} bytes"
            ),
            Self::NotHex { index } => write!(f, "byte {index} is not a hex digit"),
        }
    }
}

impl SignatureError {
    fn from_json(err: &serde_json::Error) -> Self {
        Self::BodyNotJson {
            line: err.line(),
            column: err.column(),
            category: JsonErrorCategory::of(err),
        }
    }
}

/// Checks `X-Signature` headers against request bodies with one shared secret.
///
/// Its `Debug` output redacts the secret.
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    secret: SharedSecret,
    content: SignedContent,
}

impl WebhookVerifier {
    /// A verifier using [`SignedContent::Auto`].
    pub fn new(secret: SharedSecret) -> Self {
        Self {
            secret,
            content: SignedContent::Auto,
        }
    }

    /// Chooses which bytes of the body the signature covers.
    #[must_use]
    pub fn with_signed_content(mut self, content: SignedContent) -> Self {
        self.content = content;
        self
    }

    /// The configured [`SignedContent`].
    pub fn signed_content(&self) -> SignedContent {
        self.content
    }

    /// Verifies one request.
    ///
    /// `header` is the raw value of the `X-Signature` header (`None` when absent); `body` is the
    /// request body exactly as received. Returns `Ok(())` only when the signature matches.
    ///
    /// # Errors
    ///
    /// See [`SignatureError`]: missing or malformed header, a mismatch, or (when the first event
    /// of a batch must be extracted) a body that is not a non-empty JSON array.
    pub fn verify(&self, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
        verify_with(&self.secret, self.content, header, body)
    }
}

/// Verifies a request with [`SignedContent::Auto`]. See [`WebhookVerifier::verify`].
///
/// # Errors
///
/// See [`SignatureError`].
pub fn verify(
    secret: &SharedSecret,
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    verify_with(secret, SignedContent::Auto, header, body)
}

/// Verifies a request, choosing which bytes the signature covers. See [`WebhookVerifier::verify`].
///
/// # Errors
///
/// See [`SignatureError`].
pub fn verify_with(
    secret: &SharedSecret,
    content: SignedContent,
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let tag = decode_header(header)?;
    let signed = signed_bytes(content, body)?;
    secret
        .mac()
        .chain_update(signed)
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Mismatch)
}

/// Computes the `X-Signature` value (lowercase hex) Segment would send for `content`, signing
/// `content` whole.
///
/// Useful to sign test requests and to emulate a Segment Webhooks destination. To sign a batch
/// the way Webhooks (Actions) does, pass the text of its first element.
pub fn sign(secret: &SharedSecret, content: &[u8]) -> String {
    hex::encode(secret.mac().chain_update(content).finalize().into_bytes())
}

/// Returns the bytes of `body` that the signature covers.
///
/// # Errors
///
/// [`SignatureError::BodyNotJson`], [`SignatureError::NotABatch`] or
/// [`SignatureError::EmptyBatch`] when the first element of a batch has to be extracted and
/// cannot be.
pub fn signed_bytes(content: SignedContent, body: &[u8]) -> Result<&[u8], SignatureError> {
    let batched = match content {
        SignedContent::WholeBody => false,
        SignedContent::FirstArrayElement => true,
        SignedContent::Auto => body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'['),
    };
    if batched {
        first_element(body)
    } else {
        Ok(body)
    }
}

fn decode_header(header: &[u8]) -> Result<[u8; MAC_LEN], SignatureError> {
    let trimmed = header.trim_ascii();
    if trimmed.len() != SIGNATURE_HEX_LEN {
        return Err(SignatureError::MalformedHeader {
            reason: MalformedReason::WrongLength {
                found: trimmed.len(),
            },
        });
    }
    if let Some(index) = trimmed.iter().position(|b| !b.is_ascii_hexdigit()) {
        return Err(SignatureError::MalformedHeader {
            reason: MalformedReason::NotHex { index },
        });
    }
    let mut tag = [0_u8; MAC_LEN];
    // Length and alphabet were checked above, so decoding cannot fail; map defensively anyway.
    hex::decode_to_slice(trimmed, &mut tag).map_err(|_| SignatureError::MalformedHeader {
        reason: MalformedReason::NotHex { index: 0 },
    })?;
    Ok(tag)
}

/// Extracts the exact text of the first element of a JSON array body. The whole body is still
/// validated as JSON (the remaining elements are skipped without being kept).
fn first_element(body: &[u8]) -> Result<&[u8], SignatureError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let first = (&mut de)
        .deserialize_any(FirstElementVisitor)
        .map_err(|e| SignatureError::from_json(&e))?;
    de.end().map_err(|e| SignatureError::from_json(&e))?;
    match first {
        FirstElement::NotArray => Err(SignatureError::NotABatch),
        FirstElement::Empty => Err(SignatureError::EmptyBatch),
        FirstElement::Element(raw) => Ok(raw.get().as_bytes()),
    }
}

enum FirstElement<'a> {
    NotArray,
    Empty,
    Element(&'a RawValue),
}

struct FirstElementVisitor;

impl<'de> Visitor<'de> for FirstElementVisitor {
    type Value = FirstElement<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Some(first) = seq.next_element::<&'de RawValue>()? else {
            return Ok(FirstElement::Empty);
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(FirstElement::Element(first))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(FirstElement::NotArray)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(FirstElement::NotArray)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(FirstElement::NotArray)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(FirstElement::NotArray)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(FirstElement::NotArray)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(FirstElement::NotArray)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(FirstElement::NotArray)
    }
}
