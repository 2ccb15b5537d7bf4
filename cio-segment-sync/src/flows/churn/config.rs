//! The settings of the churn flow: [`ChurnConfig`] and the choices it holds.

use std::time::Duration;

use customerio_client::Identifier;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ChurnError;

/// Default name of the enrolment event.
pub const DEFAULT_EVENT: &str = "churn_risk";
/// Default name of the enrolment attribute.
pub const DEFAULT_ATTRIBUTE: &str = "churn_risk_since";
/// Default name of the reactivation event.
pub const DEFAULT_REACTIVATION_EVENT: &str = "churn_reactivated";
/// Default inactivity period, in days.
pub const DEFAULT_INACTIVE_DAYS: u32 = 30;
/// Default bound on the people one scan looks at.
pub const DEFAULT_MAX_PER_SCAN: usize = 500;

pub(super) const SECONDS_PER_DAY: i64 = 86_400;

/// What [`ChurnConfig::min_activity_ttl`] adds beyond the churn period and the scan interval:
/// one day.
pub const ACTIVITY_TTL_MARGIN: Duration = Duration::from_secs(86_400);

fn days(days: u32) -> Duration {
    Duration::from_secs(u64::from(days) * SECONDS_PER_DAY.unsigned_abs())
}

/// How the enrolment attribute is cleared on reactivation.
///
/// Customer.io documents `null` and `""` as removing an attribute of objects and relationships;
/// for people the same convention is unconfirmed, hence the choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearWith {
    /// Send the attribute as the empty string `""` (the default).
    #[default]
    EmptyString,
    /// Send the attribute as JSON `null`.
    Null,
}

impl ClearWith {
    pub(super) fn value(self) -> Value {
        match self {
            ClearWith::EmptyString => Value::String(String::new()),
            ClearWith::Null => Value::Null,
        }
    }
}

/// Which Customer.io identifier the monitor's person strings are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonIdType {
    /// The workspace's own person `id` (the Segment userId, usually). The default.
    #[default]
    Id,
    /// The email address.
    Email,
    /// Customer.io's `cio_id`.
    CioId,
}

impl PersonIdType {
    pub(super) fn identifier(self, person: &str) -> Identifier {
        match self {
            PersonIdType::Id => Identifier::id(person),
            PersonIdType::Email => Identifier::email(person),
            PersonIdType::CioId => Identifier::cio_id(person),
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            PersonIdType::Id => "id",
            PersonIdType::Email => "email",
            PersonIdType::CioId => "cio_id",
        }
    }
}

/// Settings of a [`ChurnMonitor`](super::ChurnMonitor), loadable from TOML (every field has a default):
///
/// ```toml
/// inactive_days = 30                     # enrol after this many days without activity
/// person_id_type = "id"                  # "id" | "email" | "cio_id"
/// send_event = true
/// event_name = "churn_risk"
/// set_attribute = true
/// attribute = "churn_risk_since"
/// send_reactivation_event = true
/// reactivation_event_name = "churn_reactivated"
/// clear_attribute_with = "empty_string"  # or "null"
/// max_per_scan = 500
/// count_identify = false                 # whether identify calls count as activity
/// ignored_events = []                    # track event names that are not activity
/// # activity_ttl_days = 60               # Redis activity records expire after this long
/// #                                      # (absent: inactive_days + the scan interval + 1 day)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ChurnConfig {
    /// Days without activity after which a person is enrolled (at least 1).
    pub inactive_days: u32,
    /// Which Customer.io identifier the person strings are.
    pub person_id_type: PersonIdType,
    /// Whether enrolment sends an event.
    pub send_event: bool,
    /// The enrolment event's name.
    pub event_name: String,
    /// Whether enrolment sets an attribute.
    pub set_attribute: bool,
    /// The enrolment attribute's name.
    pub attribute: String,
    /// Whether reactivation sends an event.
    pub send_reactivation_event: bool,
    /// The reactivation event's name.
    pub reactivation_event_name: String,
    /// How reactivation clears the attribute.
    pub clear_attribute_with: ClearWith,
    /// Most people one [`ChurnMonitor::scan`](super::ChurnMonitor::scan) call looks at (at least 1).
    pub max_per_scan: usize,
    /// Whether a Segment `identify` counts as activity in [`ChurnMonitor::observe`](super::ChurnMonitor::observe) (track,
    /// page and screen always do; group and alias never do).
    pub count_identify: bool,
    /// Track event names that are not activity (e.g. events the back-sync writes).
    pub ignored_events: Vec<String>,
    /// How long, in days, the Redis activity store keeps a person nobody wrote about (see
    /// [`activity_ttl`](Self::activity_ttl)). Absent: the shortest that works,
    /// [`min_activity_ttl`](Self::min_activity_ttl). A value shorter than that is refused.
    pub activity_ttl_days: Option<u32>,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        Self {
            inactive_days: DEFAULT_INACTIVE_DAYS,
            person_id_type: PersonIdType::default(),
            send_event: true,
            event_name: DEFAULT_EVENT.to_owned(),
            set_attribute: true,
            attribute: DEFAULT_ATTRIBUTE.to_owned(),
            send_reactivation_event: true,
            reactivation_event_name: DEFAULT_REACTIVATION_EVENT.to_owned(),
            clear_attribute_with: ClearWith::default(),
            max_per_scan: DEFAULT_MAX_PER_SCAN,
            count_identify: false,
            ignored_events: Vec::new(),
            activity_ttl_days: None,
        }
    }
}

impl ChurnConfig {
    /// Checks the settings: a period and a scan bound of at least 1, non-empty names, and at
    /// least one of the event and the attribute enabled.
    pub fn validate(&self) -> Result<(), ChurnError> {
        let bad = |field, problem| Err(ChurnError::Config { field, problem });
        if self.inactive_days == 0 {
            return bad("inactive_days", "must be at least 1");
        }
        if self.max_per_scan == 0 {
            return bad("max_per_scan", "must be at least 1");
        }
        if !self.send_event && !self.set_attribute {
            return bad(
                "send_event",
                "and set_attribute are both false: enrolment would write nothing",
            );
        }
        if self.send_event && self.event_name.trim().is_empty() {
            return bad("event_name", "is empty");
        }
        if self.set_attribute && self.attribute.trim().is_empty() {
            return bad("attribute", "is empty");
        }
        if self.send_reactivation_event && self.reactivation_event_name.trim().is_empty() {
            return bad("reactivation_event_name", "is empty");
        }
        Ok(())
    }

    /// The shortest time-to-live of activity records that works with scans every
    /// `scan_interval`: [`inactive_days`](Self::inactive_days), plus the interval, plus
    /// [`ACTIVITY_TTL_MARGIN`].
    ///
    /// A person is listed as inactive `inactive_days` after their last activity and the next
    /// scan comes at most one interval later; the margin covers a scan that failed (Customer.io
    /// or Redis down for a while) and clock skew between the hosts that stamp activity and
    /// Redis. A record expiring sooner could vanish before any scan enrolled its person.
    pub fn min_activity_ttl(&self, scan_interval: Duration) -> Duration {
        days(self.inactive_days)
            .saturating_add(scan_interval)
            .saturating_add(ACTIVITY_TTL_MARGIN)
    }

    /// The time-to-live of activity records: [`activity_ttl_days`](Self::activity_ttl_days)
    /// when set, else [`min_activity_ttl`](Self::min_activity_ttl).
    pub fn activity_ttl(&self, scan_interval: Duration) -> Duration {
        self.activity_ttl_days
            .map_or_else(|| self.min_activity_ttl(scan_interval), days)
    }

    /// Checks [`activity_ttl_days`](Self::activity_ttl_days) against
    /// [`min_activity_ttl`](Self::min_activity_ttl) for scans every `scan_interval`.
    ///
    /// # Errors
    ///
    /// [`ChurnError::ActivityTtlTooShort`] naming the shortest number of days that works.
    pub fn validate_activity_ttl(&self, scan_interval: Duration) -> Result<(), ChurnError> {
        let Some(days_set) = self.activity_ttl_days else {
            return Ok(());
        };
        let min = self.min_activity_ttl(scan_interval);
        if days(days_set) >= min {
            return Ok(());
        }
        Err(ChurnError::ActivityTtlTooShort {
            days: days_set,
            min_days: min.as_secs().div_ceil(SECONDS_PER_DAY.unsigned_abs()),
            inactive_days: self.inactive_days,
            scan_interval_seconds: scan_interval.as_secs(),
        })
    }

    pub(super) fn inactive_seconds(&self) -> i64 {
        i64::from(self.inactive_days) * SECONDS_PER_DAY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_loads_from_toml_and_validates() {
        let config: ChurnConfig = toml::from_str(
            r#"
            inactive_days = 7
            person_id_type = "email"
            event_name = "at_risk"
            clear_attribute_with = "null"
            max_per_scan = 10
            "#,
        )
        .unwrap();
        assert_eq!(config.inactive_days, 7);
        assert_eq!(config.person_id_type, PersonIdType::Email);
        assert_eq!(config.clear_attribute_with, ClearWith::Null);
        assert_eq!(config.attribute, DEFAULT_ATTRIBUTE);
        config.validate().unwrap();
        assert!(toml::from_str::<ChurnConfig>("inactive_dayz = 7").is_err());
        for (bad, field) in [
            ("inactive_days = 0", "inactive_days"),
            ("max_per_scan = 0", "max_per_scan"),
            ("event_name = ' '", "event_name"),
            ("send_event = false\nset_attribute = false", "send_event"),
        ] {
            let config: ChurnConfig = toml::from_str(bad).unwrap();
            match config.validate() {
                Err(ChurnError::Config { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_activity_ttl_is_derived_from_the_period_and_interval_or_checked_against_them() {
        let interval = Duration::from_secs(900);
        let config = ChurnConfig::default();
        let minimum = Duration::from_secs(30 * 86_400 + 900 + 86_400);
        assert_eq!(config.min_activity_ttl(interval), minimum);
        assert_eq!(config.activity_ttl(interval), minimum);
        config.validate_activity_ttl(interval).unwrap();

        let set = |days| ChurnConfig {
            activity_ttl_days: Some(days),
            ..ChurnConfig::default()
        };
        assert_eq!(
            set(90).activity_ttl(interval),
            Duration::from_secs(90 * 86_400)
        );
        set(32).validate_activity_ttl(interval).unwrap();
        let error = set(31).validate_activity_ttl(interval).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`activity_ttl_days` must be at least 32 (it is 31): `inactive_days` (30) plus the \
             scan interval (900 s) plus a 1-day margin"
        );
        // A minimum of whole days is reachable exactly; zero never is.
        let day = Duration::from_secs(86_400);
        set(32).validate_activity_ttl(day).unwrap();
        assert!(set(31).validate_activity_ttl(day).is_err());
        assert!(matches!(
            set(0).validate_activity_ttl(interval),
            Err(ChurnError::ActivityTtlTooShort { min_days: 32, .. })
        ));
        // A huge interval saturates instead of overflowing.
        assert_eq!(config.min_activity_ttl(Duration::MAX), Duration::MAX);
        assert_eq!(
            toml::from_str::<ChurnConfig>("activity_ttl_days = 60")
                .unwrap()
                .activity_ttl_days,
            Some(60)
        );
    }
}
