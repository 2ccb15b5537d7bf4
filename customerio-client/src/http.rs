//! The transport shared by the Track and App clients: one `reqwest::Client`, a base URL, an
//! authorization header, and the mapping of responses to [`Error`].

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::Error;

/// A response with a success status, body read.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Response {
    /// Decodes the body as JSON; an empty body decodes as `null` (Customer.io answers some
    /// successes with no body).
    pub(crate) fn json<T: DeserializeOwned>(&self, operation: &'static str) -> Result<T, Error> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &self.body
        };
        serde_json::from_slice(body)
            .map_err(|err| Error::decode(operation, self.status, &self.body, err))
    }
}

/// A request body: JSON already serialised (so its size is known), or none.
pub(crate) enum Body {
    None,
    Json(Vec<u8>),
}

impl Body {
    pub(crate) fn json<T: Serialize + ?Sized>(
        operation: &'static str,
        value: &T,
    ) -> Result<Self, Error> {
        serde_json::to_vec(value).map(Body::Json).map_err(|err| {
            Error::invalid(operation, "request body could not be serialised").with_source(err)
        })
    }
}

/// One API surface: where to send, how to authenticate.
#[derive(Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    base: Url,
    auth: HeaderValue,
    timeout: Duration,
    extra_headers: HeaderMap,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.base.as_str())
            .field("auth", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Transport {
    pub(crate) fn new(
        client: reqwest::Client,
        base: Url,
        mut auth: HeaderValue,
        timeout: Duration,
    ) -> Self {
        auth.set_sensitive(true);
        Self {
            client,
            base,
            auth,
            timeout,
            extra_headers: HeaderMap::new(),
        }
    }

    /// HTTP Basic credentials, standard base64 alphabet.
    pub(crate) fn basic_auth(user: &str, password: &str) -> Result<HeaderValue, Error> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| Error::config("credentials contain characters not allowed in a header"))
    }

    /// Bearer token credentials.
    pub(crate) fn bearer_auth(token: &str) -> Result<HeaderValue, Error> {
        HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::config("API key contains characters not allowed in a header"))
    }

    /// Sends `value` as header `name` on every request.
    pub(crate) fn set_header(&mut self, name: reqwest::header::HeaderName, value: HeaderValue) {
        self.extra_headers.insert(name, value);
    }

    /// The base URL requests go to.
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// Joins an already-encoded absolute `path` (starting with `/`) onto the base URL, keeping
    /// any path prefix of the base.
    pub(crate) fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{path}"));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends one request and reads the whole response. Success statuses (2xx) come back as a
    /// [`Response`]; anything else is an [`Error`] classified from the status.
    pub(crate) async fn send(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Body,
    ) -> Result<Response, Error> {
        let url = self.url(path, query);
        let mut request = self
            .client
            .request(method, url)
            .timeout(self.timeout)
            .header(AUTHORIZATION, self.auth.clone())
            .headers(self.extra_headers.clone());
        if let Body::Json(bytes) = body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(bytes);
        }
        let response = request
            .send()
            .await
            .map_err(|err| Error::transport(operation, err))?;
        let status = response.status();
        let headers: HeaderMap = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|err| Error::transport(operation, err))?;
        if status.is_success() {
            tracing::debug!(
                operation,
                status = status.as_u16(),
                "customer.io request succeeded"
            );
            Ok(Response { status, body })
        } else {
            let err = Error::status(operation, status, &headers, &body, SystemTime::now());
            tracing::debug!(
                operation,
                status = status.as_u16(),
                retryable = err.is_retryable(),
                "customer.io request failed"
            );
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_header() {
        // `printf 'site:key' | base64` → c2l0ZTprZXk=
        let h = Transport::basic_auth("site", "key").unwrap();
        assert_eq!(h.to_str().unwrap(), "Basic c2l0ZTprZXk=");
        // Bytes that differ between the standard and URL-safe alphabets must use `+` and `/`.
        // `printf '>>>:???' | base64` → Pj4+Oj8/Pw== (standard alphabet, not URL-safe).
        let h = Transport::basic_auth(">>>", "???").unwrap();
        assert_eq!(h.to_str().unwrap(), "Basic Pj4+Oj8/Pw==");
        assert!(Transport::bearer_auth("a\nb").is_err());
    }

    #[test]
    fn urls_keep_base_prefix_and_encode_query() {
        let t = Transport::new(
            reqwest::Client::new(),
            Url::parse("http://127.0.0.1:1/proxy/").unwrap(),
            HeaderValue::from_static("x"),
            Duration::from_secs(1),
        );
        let url = t.url(
            "/api/v1/customers/a%2Fb",
            &[("id_type", "email"), ("q", "a b")],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/proxy/api/v1/customers/a%2Fb?id_type=email&q=a+b"
        );
        assert!(format!("{t:?}").contains("auth: \"<redacted>\""));
    }
}
