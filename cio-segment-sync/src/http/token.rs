//! [`WebhookToken`]: a shared secret every `POST /segment` request must carry in a header.

use std::fmt;

use ::http::HeaderMap;
use ::http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

/// The custom header that may carry the token: `X-Webhook-Token: <token>`.
pub const TOKEN_HEADER: &str = "x-webhook-token";

/// A shared secret every request of a Segment Webhooks destination must carry, as
/// `Authorization: Bearer <token>` or `X-Webhook-Token: <token>` (either passes; both are
/// custom headers the destination lets you set).
///
/// Why a token as well as the signature: Segment signs a batched request's **first event
/// only**, so a signature alone does not authenticate the rest of a batch. The token covers
/// the whole request. It is compared in constant time; `Debug` and `Display` never show it.
///
/// ```
/// use cio_segment_sync::http::WebhookToken;
///
/// let token = WebhookToken::new("6f1c0b1e9a4d4c7fb1f7d3b2a0e5c9d8").unwrap();
/// assert_eq!(format!("{token:?}"), "WebhookToken(<redacted>)");
/// assert!(WebhookToken::new("short").is_err());
/// ```
#[derive(Clone)]
pub struct WebhookToken(String);

/// A token that cannot be used. Never quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Shorter than [`WebhookToken::MIN_LEN`] bytes: too easy to guess.
    #[error("the webhook token must be at least {min} characters long; it is {len}", min = WebhookToken::MIN_LEN)]
    TooShort {
        /// Its length.
        len: usize,
    },
    /// Holds a character a header value cannot carry as it is (space, control, non-ASCII).
    #[error(
        "the webhook token may hold only visible ASCII characters (no space); character {position} is not one"
    )]
    BadCharacter {
        /// The 0-based position of the first such character.
        position: usize,
    },
}

/// Why a request's token was refused. Never quotes what was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRefusal {
    /// Neither `Authorization: Bearer …` nor `X-Webhook-Token` was sent.
    #[error("the request carries no webhook token (`Authorization: Bearer` or `X-Webhook-Token`)")]
    Missing,
    /// A token was sent and it is not the configured one.
    #[error("the request's webhook token is wrong")]
    Wrong,
}

impl WebhookToken {
    /// The shortest token accepted, in bytes (e.g. `openssl rand -hex 32` gives 64).
    pub const MIN_LEN: usize = 16;

    /// The token `value`.
    ///
    /// # Errors
    ///
    /// [`TokenError`] for a token under [`MIN_LEN`](Self::MIN_LEN) bytes or holding a
    /// character other than visible ASCII.
    pub fn new(value: impl Into<String>) -> Result<Self, TokenError> {
        let value = value.into();
        if let Some(position) = value.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(TokenError::BadCharacter { position });
        }
        if value.len() < Self::MIN_LEN {
            return Err(TokenError::TooShort { len: value.len() });
        }
        Ok(Self(value))
    }

    /// Checks the headers of a request: passes when `Authorization: Bearer <token>` or
    /// `X-Webhook-Token: <token>` carries this token.
    ///
    /// # Errors
    ///
    /// [`TokenRefusal`]: no token sent, or a wrong one.
    pub fn verify(&self, headers: &HeaderMap) -> Result<(), TokenRefusal> {
        let bearer = headers
            .get_all(AUTHORIZATION)
            .iter()
            .filter_map(|value| bearer(value.as_bytes()));
        let custom = headers
            .get_all(TOKEN_HEADER)
            .iter()
            .map(|value| value.as_bytes());
        let mut sent = false;
        let mut matched = false;
        for candidate in bearer.chain(custom) {
            sent = true;
            // Every candidate is compared, so the time does not say which header matched.
            matched |= bool::from(candidate.ct_eq(self.0.as_bytes()));
        }
        match (sent, matched) {
            (_, true) => Ok(()),
            (false, false) => Err(TokenRefusal::Missing),
            (true, false) => Err(TokenRefusal::Wrong),
        }
    }
}

/// The credentials of an `Authorization: Bearer <credentials>` value (scheme case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

impl fmt::Debug for WebhookToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookToken(<redacted>)")
    }
}

impl fmt::Display for WebhookToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use ::http::HeaderValue;

    use super::*;

    const TOKEN: &str = "a-token-of-32-chars-0123456789ab";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn debug_and_display_never_show_the_token() {
        let token = WebhookToken::new(TOKEN).unwrap();
        for text in [format!("{token:?}"), token.to_string()] {
            assert!(!text.contains(TOKEN), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
    }

    #[test]
    fn either_header_passes_and_the_bearer_scheme_is_case_insensitive() {
        let token = WebhookToken::new(TOKEN).unwrap();
        let bearer = format!("Bearer {TOKEN}");
        let lower = format!("bearer {TOKEN}");
        assert_eq!(
            token.verify(&headers(&[("authorization", &bearer)])),
            Ok(())
        );
        assert_eq!(token.verify(&headers(&[("authorization", &lower)])), Ok(()));
        assert_eq!(token.verify(&headers(&[(TOKEN_HEADER, TOKEN)])), Ok(()));
        // A partner's Basic credentials beside the right custom header.
        assert_eq!(
            token.verify(&headers(&[
                ("authorization", "Basic dXNlcjo="),
                (TOKEN_HEADER, TOKEN)
            ])),
            Ok(())
        );
    }

    #[test]
    fn missing_and_wrong_tokens_are_told_apart() {
        let token = WebhookToken::new(TOKEN).unwrap();
        assert_eq!(token.verify(&HeaderMap::new()), Err(TokenRefusal::Missing));
        assert_eq!(
            token.verify(&headers(&[("authorization", "Basic dXNlcjo=")])),
            Err(TokenRefusal::Missing)
        );
        let wrong = format!("Bearer {TOKEN}x");
        assert_eq!(
            token.verify(&headers(&[("authorization", &wrong)])),
            Err(TokenRefusal::Wrong)
        );
        assert_eq!(
            token.verify(&headers(&[(TOKEN_HEADER, &TOKEN[..20])])),
            Err(TokenRefusal::Wrong)
        );
        // The token as a Basic credential is not a bearer token.
        let basic = format!("Basic {TOKEN}");
        assert_eq!(
            token.verify(&headers(&[("authorization", &basic)])),
            Err(TokenRefusal::Missing)
        );
    }

    #[test]
    fn unusable_tokens_are_refused_without_quoting_them() {
        assert_eq!(
            WebhookToken::new("short-secret").unwrap_err(),
            TokenError::TooShort { len: 12 }
        );
        let error = WebhookToken::new("a token with spaces in it").unwrap_err();
        assert_eq!(error, TokenError::BadCharacter { position: 1 });
        assert!(!error.to_string().contains("spaces"), "{error}");
        assert!(matches!(
            WebhookToken::new("ünicode-token-0123456789"),
            Err(TokenError::BadCharacter { position: 0 })
        ));
    }
}
