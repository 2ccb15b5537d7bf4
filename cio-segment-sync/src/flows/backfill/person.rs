//! The person a backfill is for.

use std::fmt;

use customerio_client::Identifier;
use customerio_client::webhook::ReportingEvent;

/// The person to backfill, as Customer.io knows them. Blank values count as absent.
///
/// Its `Debug` output says which identifiers are present, never their values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BackfillPerson {
    pub(super) id: Option<String>,
    pub(super) email: Option<String>,
    pub(super) cio_id: Option<String>,
}

impl fmt::Debug for BackfillPerson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackfillPerson")
            .field("has_id", &self.id.is_some())
            .field("has_email", &self.email.is_some())
            .field("has_cio_id", &self.cio_id.is_some())
            .finish()
    }
}

fn non_blank(value: impl Into<String>) -> Option<String> {
    let value = value.into();
    (!value.trim().is_empty()).then_some(value)
}

impl BackfillPerson {
    /// Nobody yet; add identifiers with the `with_` methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// The person's Customer.io `id` (also their Segment `user_id`).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = non_blank(id);
        self
    }

    /// The person's email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = non_blank(email);
        self
    }

    /// The person's Customer.io `cio_id`.
    pub fn with_cio_id(mut self, cio_id: impl Into<String>) -> Self {
        self.cio_id = non_blank(cio_id);
        self
    }

    /// The person a webhook event is about (`data.identifiers`, with its fallbacks).
    pub fn from_event(event: &ReportingEvent) -> Self {
        let ids = event.person_identifiers();
        let mut person = Self::new();
        if let Some(id) = ids.id {
            person = person.with_id(id);
        }
        if let Some(email) = ids.email {
            person = person.with_email(email);
        }
        if let Some(cio_id) = ids.cio_id {
            person = person.with_cio_id(cio_id);
        }
        person
    }

    /// How the backfill writes to the person in Customer.io: by `id`, else `cio_id`, else
    /// `email`.
    pub fn identifier(&self) -> Option<Identifier> {
        if let Some(id) = &self.id {
            Some(Identifier::id(id.as_str()))
        } else if let Some(cio_id) = &self.cio_id {
            Some(Identifier::cio_id(cio_id.as_str()))
        } else {
            self.email.as_deref().map(Identifier::email)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn person_from_event_prefers_id_then_cio_id_then_email_and_hides_values() {
        let event = ReportingEvent::from_value(json!({
            "event_id": "E1", "object_type": "customer", "metric": "subscribed",
            "timestamp": 1, "data": {"identifiers": {"id": "", "email": "ada@example.com",
            "cio_id": "c1"}}
        }))
        .unwrap();
        let person = BackfillPerson::from_event(&event);
        assert_eq!(person.identifier(), Some(Identifier::cio_id("c1")));
        assert_eq!(
            BackfillPerson::new().with_email("a@b.co").identifier(),
            Some(Identifier::email("a@b.co"))
        );
        assert_eq!(
            BackfillPerson::new()
                .with_id("u1")
                .with_cio_id("c1")
                .identifier(),
            Some(Identifier::id("u1"))
        );
        assert_eq!(BackfillPerson::new().with_id("  ").identifier(), None);
        let debug = format!("{person:?}");
        assert!(
            !debug.contains("ada@example.com") && !debug.contains("c1"),
            "{debug}"
        );
    }
}
