//! Push devices on a person: [`Platform`], [`Device`], and the `add_device` / `delete_device`
//! operations ([`AddDevice`], [`DeleteDevice`]). Their `Debug` shows a token's length, never the
//! token.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{check_not_empty, check_person, check_timestamp};
use crate::error::Error;
use crate::identifier::Identifier;

string_enum! {
    /// A device's platform.
    pub enum Platform {
        /// Apple (APNs).
        Ios => "ios",
        /// Android (FCM).
        Android => "android",
    }
}

/// A push device for `add_device`: its token (`token`, not `id` as in v1), platform, when it
/// was last used and string attributes (`device_os`, `device_model`, `app_version`,
/// `cio_sdk_version`, `device_locale`, `push_enabled`). Its `Debug` shows the token's length,
/// not the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    token: String,
    platform: Platform,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used: Option<i64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    attributes: Map<String, Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("token", &crate::secret::TokenLength(&self.token))
            .field("platform", &self.platform)
            .field("last_used", &self.last_used)
            .field("attributes", &self.attributes)
            .field("extra", &self.extra)
            .finish()
    }
}

impl Device {
    const OP: &'static str = "track.v2.person.add_device";

    /// A device by token and platform. Refuses an empty token.
    pub fn new(token: impl Into<String>, platform: Platform) -> Result<Self, Error> {
        let device = Self {
            token: token.into(),
            platform,
            last_used: None,
            attributes: Map::new(),
            extra: Map::new(),
        };
        device.check()?;
        Ok(device)
    }

    /// When the device was last used (Unix seconds; Customer.io defaults it to the request
    /// time).
    pub fn with_last_used(mut self, seconds: i64) -> Result<Self, Error> {
        check_timestamp(Self::OP, "device.last_used", Some(seconds))?;
        self.last_used = Some(seconds);
        Ok(self)
    }

    /// Sets one device attribute. Customer.io stores device attribute values as strings
    /// (`push_enabled` is `"true"` or `"false"`).
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes
            .insert(name.into(), Value::String(value.into()));
        self
    }

    /// The device token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The platform.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// When the device was last used (Unix seconds).
    pub fn last_used(&self) -> Option<i64> {
        self.last_used
    }

    /// The device attributes.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    fn check(&self) -> Result<(), Error> {
        check_not_empty(Self::OP, "device.token", &self.token)?;
        check_timestamp(Self::OP, "device.last_used", self.last_used)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AddDeviceFields {
    identifiers: Identifier,
    device: Device,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Person `add_device`: add or update a push device.
    pub struct AddDevice(AddDeviceFields);
}

impl AddDevice {
    const OP: &'static str = "track.v2.person.add_device";

    /// Adds `device` to `who`.
    pub fn new(who: Identifier, device: Device) -> Result<Self, Error> {
        let value = Self(AddDeviceFields {
            identifiers: who,
            device,
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// The person.
    pub fn identifiers(&self) -> &Identifier {
        &self.0.identifiers
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.0.device
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        check_person(Self::OP, "identifiers", &self.0.identifiers)?;
        self.0.device.check()
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
struct DeviceToken {
    token: String,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceToken")
            .field("token", &crate::secret::TokenLength(&self.token))
            .field("extra", &self.extra)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DeleteDeviceFields {
    identifiers: Identifier,
    device: DeviceToken,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

checked_type! {
    /// Person `delete_device`: remove a device by token (`{"device": {"token": …}}`).
    pub struct DeleteDevice(DeleteDeviceFields);
}

impl DeleteDevice {
    const OP: &'static str = "track.v2.person.delete_device";

    /// Removes the device `token` from `who`.
    pub fn new(who: Identifier, token: impl Into<String>) -> Result<Self, Error> {
        let value = Self(DeleteDeviceFields {
            identifiers: who,
            device: DeviceToken {
                token: token.into(),
                extra: Map::new(),
            },
            extra: Map::new(),
        });
        value.check()?;
        Ok(value)
    }

    /// The person.
    pub fn identifiers(&self) -> &Identifier {
        &self.0.identifiers
    }

    /// The device token.
    pub fn token(&self) -> &str {
        &self.0.device.token
    }

    /// Keys this crate does not model, kept from deserialisation.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.0.extra
    }

    fn check(&self) -> Result<(), Error> {
        check_person(Self::OP, "identifiers", &self.0.identifiers)?;
        check_not_empty(Self::OP, "device.token", &self.0.device.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_token_is_not_shown_in_debug() {
        let op = DeleteDevice::new(Identifier::id("u1"), "ff15bc0c20c4aa6cd5").unwrap();
        let shown = format!("{op:?}");
        assert!(!shown.contains("ff15bc0c20c4aa6cd5"), "{shown}");
        assert!(shown.contains("<token, 18 bytes>"), "{shown}");
        let device = Device::new("ff15bc0c20c4aa6cd5", Platform::Ios).unwrap();
        let shown = format!("{device:?}");
        assert!(!shown.contains("ff15bc0c20c4aa6cd5"), "{shown}");
        assert!(shown.contains("<token, 18 bytes>"), "{shown}");
    }
}
