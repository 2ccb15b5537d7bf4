//! Push devices: [`Platform`] and [`Device`] (whose `Debug` shows the token's length, never the
//! token), and the body of an add-device call.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::ser::Serializer;

use super::common::check_timestamp;
use crate::error::Error;

/// A device's platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Platform {
    /// `ios`
    Ios,
    /// `android`
    Android,
    /// A platform this crate does not know yet, sent as written.
    Other(String),
}

impl Platform {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Other(other) => other,
        }
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A push device for [`TrackClient::add_device`].
///
/// ```
/// use customerio_client::track::v1::{Device, Platform};
///
/// let device = Device::new("fcm-token", Platform::Android).last_used(1717172300).attribute("app_version", "3.2.1");
/// assert_eq!(
///     serde_json::to_value(&device)?,
///     serde_json::json!({"id": "fcm-token", "platform": "android", "last_used": 1717172300,
///                        "attributes": {"app_version": "3.2.1"}})
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// [`TrackClient::add_device`]: crate::TrackClient::add_device
#[derive(Clone, PartialEq, Serialize)]
pub struct Device {
    id: String,
    platform: Platform,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used: Option<u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<String, String>,
}

impl fmt::Debug for Device {
    /// Shows the token's length, not the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("id", &crate::secret::TokenLength(&self.id))
            .field("platform", &self.platform)
            .field("last_used", &self.last_used)
            .field("attributes", &self.attributes)
            .finish()
    }
}

impl Device {
    /// A device by its push token (APNs or FCM) and platform.
    pub fn new(token: impl Into<String>, platform: Platform) -> Self {
        Self {
            id: token.into(),
            platform,
            last_used: None,
            attributes: BTreeMap::new(),
        }
    }

    /// Sets when the device was last used (Unix seconds; defaults to the time of the request).
    pub fn last_used(mut self, seconds: u64) -> Self {
        self.last_used = Some(seconds);
        self
    }

    /// Sets a device attribute. Known keys: `device_os`, `device_model`, `app_version`,
    /// `cio_sdk_version`, `device_locale`, `push_enabled`. Values are strings.
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Sets `push_enabled` to `"true"` or `"false"`.
    pub fn push_enabled(self, enabled: bool) -> Self {
        self.attribute("push_enabled", if enabled { "true" } else { "false" })
    }

    pub(super) fn validate(&self, operation: &'static str) -> Result<(), Error> {
        if self.id.is_empty() {
            return Err(Error::invalid(operation, "device.id (the token) is empty"));
        }
        if self.platform.as_str().is_empty() {
            return Err(Error::invalid(operation, "device.platform is empty"));
        }
        if let Some(seconds) = self.last_used {
            check_timestamp(operation, "device.last_used", seconds)?;
        }
        if self.attributes.contains_key("_last_status") {
            return Err(Error::invalid(
                operation,
                "device.attributes._last_status is read-only",
            ));
        }
        Ok(())
    }
}

#[derive(Serialize)]
pub(super) struct DeviceBody<'a> {
    pub(super) device: &'a Device,
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::OP;
    use super::*;
    use serde_json::json;

    #[test]
    fn a_device_token_is_not_shown_in_debug() {
        let device = Device::new("apns-secret-token", Platform::Ios).last_used(1);
        let shown = format!("{device:?}");
        assert!(!shown.contains("apns-secret-token"), "{shown}");
        assert!(shown.contains("<token, 17 bytes>"), "{shown}");
    }

    #[test]
    fn device_checks() {
        assert!(Device::new("", Platform::Ios).validate(OP).is_err());
        assert!(
            Device::new("t", Platform::Other(String::new()))
                .validate(OP)
                .is_err()
        );
        assert!(
            Device::new("t", Platform::Ios)
                .attribute("_last_status", "x")
                .validate(OP)
                .is_err()
        );
        assert!(
            Device::new("t", Platform::Ios)
                .last_used(17_171_723_000_000)
                .validate(OP)
                .is_err()
        );
        assert_eq!(
            serde_json::to_value(
                Device::new("t", Platform::Other("web".into())).push_enabled(false)
            )
            .unwrap(),
            json!({"id": "t", "platform": "web", "attributes": {"push_enabled": "false"}})
        );
    }
}
