//! One webhook request as the host received it.

use std::fmt;

/// One webhook request as received: the raw values of the two signature headers (named by
/// [`TIMESTAMP_HEADER`](customerio_client::webhook::TIMESTAMP_HEADER) and
/// [`SIGNATURE_HEADER`](customerio_client::webhook::SIGNATURE_HEADER), matched
/// case-insensitively by HTTP libraries; `None` when absent) and the body bytes exactly as
/// received (never re-serialised).
#[derive(Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The `X-CIO-Timestamp` header value.
    pub timestamp: Option<&'a [u8]>,
    /// The `X-CIO-Signature` header value.
    pub signature: Option<&'a [u8]>,
    /// The raw body.
    pub body: &'a [u8],
}

impl fmt::Debug for SignedRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body holds customer data.
        f.debug_struct("SignedRequest")
            .field("has_timestamp", &self.timestamp.is_some())
            .field("has_signature", &self.signature.is_some())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_request_debug_hides_the_body() {
        let request = SignedRequest {
            timestamp: Some(b"1"),
            signature: None,
            body: b"{\"email\":\"ada@example.com\"}",
        };
        let debug = format!("{request:?}");
        assert!(!debug.contains("ada@example.com"), "{debug}");
        assert!(debug.contains("body_bytes: 27"), "{debug}");
    }
}
