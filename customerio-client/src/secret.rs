//! Credentials as newtypes whose `Debug` and `Display` never show the value.
//!
//! ```
//! use customerio_client::TrackApiKey;
//!
//! let key = TrackApiKey::new("abc123");
//! assert_eq!(format!("{key:?}"), "TrackApiKey(<redacted>)");
//! assert_eq!(key.to_string(), "<redacted>");
//! assert_eq!(key.expose_secret(), "abc123");
//! ```

use std::fmt;

macro_rules! secret_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// Wraps a credential value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The credential value itself. Call this only where the value must go on the wire.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("<redacted>")
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

secret_newtype! {
    /// The Track API site id (the user name of the Track API's Basic credentials).
    ///
    /// Not a secret on its own, but it identifies a workspace and is half of a credential pair,
    /// so it is redacted like one.
    SiteId
}

secret_newtype! {
    /// The Track API key (the password of the Track API's Basic credentials).
    TrackApiKey
}

secret_newtype! {
    /// An App API key, sent as a Bearer token.
    AppApiKey
}

/// Shows a device push token in `Debug` output by its length only: a token addresses one
/// person's device, so it stays out of logs like any personal identifier.
pub(crate) struct TokenLength<'a>(pub(crate) &'a str);

impl fmt::Debug for TokenLength<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<token, {} bytes>", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let values: [(&dyn fmt::Debug, &dyn fmt::Display); 3] = [
            (&SiteId::new("site-secret-1"), &SiteId::new("site-secret-1")),
            (
                &TrackApiKey::new("track-secret-2"),
                &TrackApiKey::new("track-secret-2"),
            ),
            (
                &AppApiKey::new("app-secret-3"),
                &AppApiKey::new("app-secret-3"),
            ),
        ];
        for (debug, display) in values {
            let shown = format!("{debug:?} {debug:#?} {display}");
            assert!(!shown.contains("secret"), "secret leaked: {shown}");
            assert!(shown.contains("<redacted>"));
        }
    }
}
