//! [`MappingError`]: why a message could not be mapped.

/// Why a Segment message could not be turned into Customer.io operations.
///
/// Every variant names the call and the field at fault; none carries the value, so the
/// `Display` text never shows an id, an email or any other customer data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// A field the operation needs is absent, `null` or empty.
    #[error("{call}: `{field}` is missing")]
    MissingField {
        /// The call or lifecycle event being mapped (`track`, `Device Deleted`, …).
        call: &'static str,
        /// The field, as a path in the Segment message (`context.device.token`).
        field: &'static str,
    },
    /// A field is present but unusable.
    #[error("{call}: `{field}` {problem}")]
    InvalidField {
        /// The call or lifecycle event being mapped.
        call: &'static str,
        /// The field, as a path in the Segment message.
        field: &'static str,
        /// What is wrong with it, without its value.
        problem: &'static str,
    },
    /// Every candidate for a page or screen name is longer than Customer.io's 100-byte limit.
    #[error("{call}: `{field}` is {bytes} bytes; Customer.io names are at most 100 bytes")]
    NameTooLong {
        /// The call being mapped.
        call: &'static str,
        /// The field the (last tried) name came from.
        field: &'static str,
        /// Its length in bytes.
        bytes: usize,
    },
    /// Identity resolution answered with a target this call cannot use (an alias resolved to
    /// a single person, an identify resolved to a merge). This points at the resolver.
    #[error("{call}: the resolved target ({target}) cannot be used for this call")]
    TargetMismatch {
        /// The call being mapped.
        call: &'static str,
        /// The kind of target received (`person`, `anonymous`, `merge`).
        target: &'static str,
    },
    /// A reserved event that has no Track v2 operation (`Report Delivery Event`,
    /// `Report Content Event`: Customer.io takes those on its v1 metrics endpoint).
    #[error("`{event}` has no Track v2 operation")]
    Unsupported {
        /// The event name.
        event: &'static str,
    },
    /// A message type this version of the mapping does not know.
    #[error("message type `{kind}` is not supported by the mapping")]
    UnsupportedCall {
        /// The message's `type`.
        kind: &'static str,
    },
    /// The configuration clamps future timestamps, which needs the current time: call
    /// [`map_at`](super::map_at) instead of [`map`](super::map).
    #[error("clamp_future_timestamps is set; call map_at with the current time")]
    ClockRequired,
    /// The operation was refused by the Customer.io client's checks (a documented limit such
    /// as 300 attributes, 1000-byte values or 150-byte ids). The client's message names the
    /// field, never its value.
    #[error("{call}: the Customer.io client refused the operation")]
    Operation {
        /// The call being mapped.
        call: &'static str,
        /// The client's validation error.
        #[source]
        source: customerio_client::Error,
    },
}

impl MappingError {
    /// Wraps a client validation error for the call `call`.
    pub(crate) fn operation(call: &'static str) -> impl FnOnce(customerio_client::Error) -> Self {
        move |source| MappingError::Operation { call, source }
    }
}
