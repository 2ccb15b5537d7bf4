//! The `context` object: typed standard fields, every sub-object keeping its unknown keys.
//!
//! Context is filled by SDKs on many platforms, and the types they write are not always the
//! documented ones. Decoding `context` is therefore **lenient**: a standard key whose value has
//! an unexpected JSON type (say `app.build` as a number) is kept verbatim in that object's
//! `extra` map and its typed field stays `None`, instead of rejecting the whole message. The
//! message still round-trips exactly, and [`Message::validate`](crate::Message::validate)
//! reports such keys as violations when you want strictness. Only `context` itself must be an
//! object.

use serde_json::{Map, Number, Value};

use crate::error::Error;
use crate::error::decode::{FromJson, Path, json_object};
use crate::message::{Id, NumberOrString};
use crate::reserved::Traits;

json_object! {
    mode = lenient;
    /// The `context` object of a message (Segment spec, common fields).
    ///
    /// ```
    /// use segment_model::Context;
    ///
    /// let ctx: Context = serde_json::from_str(
    ///     r#"{"ip":"203.0.113.9","library":{"name":"analytics-python","version":"2.3.2"},"x":1}"#,
    /// )?;
    /// assert_eq!(ctx.ip.as_deref(), Some("203.0.113.9"));
    /// assert_eq!(ctx.library.as_ref().and_then(|l| l.name.as_deref()), Some("analytics-python"));
    /// assert_eq!(ctx.extra["x"], 1);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub struct Context {
        /// `active`: `false` marks a call that must not update "last seen".
        active: bool => "active",
        /// `app`: the mobile app that sent the call.
        app: App => "app",
        /// `campaign`: UTM campaign data.
        campaign: Campaign => "campaign",
        /// `device`: the device that sent the call.
        device: Device => "device",
        /// `ip`: the user's IP address.
        ip: String => "ip",
        /// `direct`: ask Segment to capture the request's IP for a raw HTTP call.
        direct: bool => "direct",
        /// `library`: the SDK that produced the call.
        library: Library => "library",
        /// `locale`, e.g. `en-US`.
        locale: String => "locale",
        /// `location`: where the user was.
        location: Location => "location",
        /// `network`: connectivity of the device.
        network: Network => "network",
        /// `os`: operating system.
        os: Os => "os",
        /// `page`: the web page the call came from.
        page: PageContext => "page",
        /// `referrer`: what referred the user.
        referrer: Referrer => "referrer",
        /// `screen`: the device's screen.
        screen: Screen => "screen",
        /// `groupId`: the account to attribute a non-group call to.
        group_id: Id => "groupId",
        /// `timezone`: tzdata zone name, e.g. `Europe/Berlin`.
        timezone: String => "timezone",
        /// `traits`: user traits carried on a non-identify call (does not update the profile).
        traits: Traits => "traits",
        /// `userAgent`: the raw user-agent string.
        user_agent: String => "userAgent",
        /// `userAgentData`: browser client hints.
        user_agent_data: UserAgentData => "userAgentData",
        /// `channel`, when an SDK puts it inside context (it is usually top-level).
        channel: String => "channel",
        /// `externalIds`: custom identity-resolution ids.
        external_ids: Vec<ExternalId> => "externalIds",
        /// `personas`: present on events Engage generates.
        personas: Personas => "personas",
        /// `consent`: consent category preferences.
        consent: Consent => "consent",
    }
}

impl Context {
    /// The e-mail address in `context.traits.email`, if it is a string.
    pub fn email(&self) -> Option<&str> {
        self.traits.as_ref().and_then(|t| t.email())
    }

    /// Paths (relative to `context`) of standard keys whose value had an unexpected JSON type
    /// and was therefore kept in an `extra` map instead of its typed field.
    pub fn nonconforming_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_nonconforming(Self::KEYS, &self.extra, "", &mut out);
        macro_rules! nested {
            ($($field:ident => $key:literal),* $(,)?) => {
                $(
                    if let Some(inner) = &self.$field {
                        collect_nonconforming(inner.keys(), &inner.extra, $key, &mut out);
                    }
                )*
            };
        }
        nested!(
            app => "app",
            campaign => "campaign",
            device => "device",
            library => "library",
            location => "location",
            network => "network",
            os => "os",
            page => "page",
            referrer => "referrer",
            screen => "screen",
            personas => "personas",
            consent => "consent",
        );
        if let Some(ua) = &self.user_agent_data {
            collect_nonconforming(UserAgentData::KEYS, &ua.extra, "userAgentData", &mut out);
            for (list_key, list) in [
                ("brands", &ua.brands),
                ("fullVersionList", &ua.full_version_list),
            ] {
                for (i, brand) in list.iter().flatten().enumerate() {
                    let prefix = format!("userAgentData.{list_key}[{i}]");
                    collect_nonconforming(Brand::KEYS, &brand.extra, &prefix, &mut out);
                }
            }
        }
        for (i, id) in self.external_ids.iter().flatten().enumerate() {
            let prefix = format!("externalIds[{i}]");
            collect_nonconforming(ExternalId::KEYS, &id.extra, &prefix, &mut out);
        }
        out
    }
}

/// Lists modelled keys that sit in `extra` with a non-null value (they did not conform).
fn collect_nonconforming(
    keys: &[&str],
    extra: &Map<String, Value>,
    prefix: &str,
    out: &mut Vec<String>,
) {
    for key in keys {
        if extra.get(*key).is_some_and(|v| !v.is_null()) {
            if prefix.is_empty() {
                out.push((*key).to_owned());
            } else {
                out.push(format!("{prefix}.{key}"));
            }
        }
    }
}

/// Access to a generated object's key list through a value (used by `nonconforming_paths`).
trait Keys {
    fn keys(&self) -> &'static [&'static str];
}

macro_rules! impl_keys {
    ($($ty:ty),*) => {
        $(impl Keys for $ty {
            fn keys(&self) -> &'static [&'static str] {
                Self::KEYS
            }
        })*
    };
}
impl_keys!(
    App,
    Campaign,
    Device,
    Library,
    Location,
    Network,
    Os,
    PageContext,
    Referrer,
    Screen,
    Personas,
    Consent
);

json_object! {
    mode = lenient;
    /// `context.app`: the mobile application that sent the call.
    pub struct App {
        /// `name`.
        name: String => "name",
        /// `version`.
        version: String => "version",
        /// `build`.
        build: String => "build",
        /// `namespace`, e.g. the bundle id.
        namespace: String => "namespace",
    }
}

json_object! {
    mode = lenient;
    /// `context.campaign`: UTM data. Custom `utm_*`-derived keys stay in `extra`.
    pub struct Campaign {
        /// `name` (utm_campaign).
        name: String => "name",
        /// `source` (utm_source).
        source: String => "source",
        /// `medium` (utm_medium).
        medium: String => "medium",
        /// `term` (utm_term).
        term: String => "term",
        /// `content` (utm_content).
        content: String => "content",
    }
}

json_object! {
    mode = lenient;
    /// `context.device`: the device that sent the call.
    pub struct Device {
        /// `id`.
        id: String => "id",
        /// `advertisingId`.
        advertising_id: String => "advertisingId",
        /// `adTrackingEnabled`.
        ad_tracking_enabled: bool => "adTrackingEnabled",
        /// `manufacturer`.
        manufacturer: String => "manufacturer",
        /// `model`, e.g. `iPhone16,2`.
        model: String => "model",
        /// `name`.
        name: String => "name",
        /// `type`, e.g. `ios` or `android`.
        device_type: String => "type",
        /// `version`.
        version: String => "version",
        /// `token`: the push token.
        token: String => "token",
    }
}

json_object! {
    mode = lenient;
    /// `context.library`: the SDK that produced the call.
    pub struct Library {
        /// `name`, e.g. `analytics-python`.
        name: String => "name",
        /// `version`.
        version: String => "version",
    }
}

json_object! {
    mode = lenient;
    /// `context.location`. Latitude and longitude arrive as numbers or strings depending on
    /// the SDK; both are kept as sent.
    pub struct Location {
        /// `city`.
        city: String => "city",
        /// `country`.
        country: String => "country",
        /// `region`.
        region: String => "region",
        /// `latitude`.
        latitude: NumberOrString => "latitude",
        /// `longitude`.
        longitude: NumberOrString => "longitude",
        /// `speed`.
        speed: Number => "speed",
    }
}

json_object! {
    mode = lenient;
    /// `context.network`: the device's connectivity.
    pub struct Network {
        /// `bluetooth` enabled.
        bluetooth: bool => "bluetooth",
        /// `carrier` name.
        carrier: String => "carrier",
        /// `cellular` in use.
        cellular: bool => "cellular",
        /// `wifi` in use.
        wifi: bool => "wifi",
    }
}

json_object! {
    mode = lenient;
    /// `context.os`: operating system.
    pub struct Os {
        /// `name`.
        name: String => "name",
        /// `version`.
        version: String => "version",
    }
}

json_object! {
    mode = lenient;
    /// `context.page`: the web page a call came from.
    pub struct PageContext {
        /// `path`.
        path: String => "path",
        /// `referrer`: the previous full URL.
        referrer: String => "referrer",
        /// `search`: the query string including `?`.
        search: String => "search",
        /// `title`.
        title: String => "title",
        /// `url`.
        url: String => "url",
        /// `hash` (sent by the Go SDK).
        hash: String => "hash",
    }
}

json_object! {
    mode = lenient;
    /// `context.referrer`: what referred the user.
    pub struct Referrer {
        /// `type`.
        referrer_type: String => "type",
        /// `name`.
        name: String => "name",
        /// `url`.
        url: String => "url",
        /// `link`.
        link: String => "link",
        /// `id`.
        id: String => "id",
    }
}

json_object! {
    mode = lenient;
    /// `context.screen`: the device's screen.
    pub struct Screen {
        /// `density`.
        density: Number => "density",
        /// `height`.
        height: Number => "height",
        /// `width`.
        width: Number => "width",
    }
}

json_object! {
    mode = lenient;
    /// `context.userAgentData`: browser client hints.
    pub struct UserAgentData {
        /// `brands`.
        brands: Vec<Brand> => "brands",
        /// `mobile`.
        mobile: bool => "mobile",
        /// `platform`.
        platform: String => "platform",
        /// `bitness`.
        bitness: String => "bitness",
        /// `model`.
        model: String => "model",
        /// `platformVersion`.
        platform_version: String => "platformVersion",
        /// `uaFullVersion` (deprecated by browsers).
        ua_full_version: String => "uaFullVersion",
        /// `fullVersionList`.
        full_version_list: Vec<Brand> => "fullVersionList",
        /// `wow64`.
        wow64: bool => "wow64",
        /// `architecture`.
        architecture: String => "architecture",
    }
}

json_object! {
    mode = lenient;
    /// One `{brand, version}` entry of `userAgentData.brands` or `fullVersionList`.
    pub struct Brand {
        /// `brand`.
        brand: String => "brand",
        /// `version`.
        version: String => "version",
    }
}

json_object! {
    mode = lenient;
    /// One entry of `context.externalIds`: a custom identity-resolution id.
    pub struct ExternalId {
        /// `id`: the identifier value.
        id: String => "id",
        /// `type`: lowercase id type, e.g. `email`.
        id_type: String => "type",
        /// `collection`: `users` or `accounts`.
        collection: String => "collection",
        /// `encoding`: `none`.
        encoding: String => "encoding",
    }
}

json_object! {
    mode = lenient;
    /// `context.personas`: added by Engage to the identify and track calls it generates.
    pub struct Personas {
        /// `computation_class`: `audience`, `trait`, `computed_trait`, `journey_step`, ...
        computation_class: String => "computation_class",
        /// `computation_id`: the audience or trait id (`aud_...`, `tra_...`).
        computation_id: String => "computation_id",
        /// `computation_key`: the trait or property name the membership appears under.
        computation_key: String => "computation_key",
        /// `space_id`: the Engage space (`spa_...`).
        space_id: String => "space_id",
        /// `namespace`: same value as `space_id`.
        namespace: String => "namespace",
        /// `computation_run_id`.
        computation_run_id: String => "computation_run_id",
        /// `event_emitter_id`: the activation id.
        event_emitter_id: String => "event_emitter_id",
        /// `external_audience_id`: the audience id created in the destination.
        external_audience_id: String => "external_audience_id",
        /// `audience_settings`: per-audience destination settings.
        audience_settings: Map<String, Value> => "audience_settings",
    }
}

json_object! {
    mode = lenient;
    /// `context.consent`.
    pub struct Consent {
        /// `categoryPreferences`: consent category → allowed. Values are kept as sent; see
        /// [`Consent::category_allowed`].
        category_preferences: Map<String, Value> => "categoryPreferences",
    }
}

impl Consent {
    /// Whether `category` is allowed, when it is present as a boolean.
    pub fn category_allowed(&self, category: &str) -> Option<bool> {
        self.category_preferences
            .as_ref()
            .and_then(|prefs| prefs.get(category))
            .and_then(Value::as_bool)
    }
}

impl FromJson for Traits {
    fn from_json(value: Value, path: &Path<'_>) -> Result<Self, Error> {
        Map::from_json(value, path).map(Traits::from)
    }

    fn accepts(value: &Value) -> bool {
        value.is_object()
    }
}
