//! The v1 calls on [`TrackClient`]: identify, delete, suppress and unsuppress; events;
//! devices; merge; metrics; manual segments.

use reqwest::Method;
use serde::Serialize;
use serde_json::{Map, Value};

use super::common::{check_person, person_path};
use super::device::{Device, DeviceBody};
use super::event::{AnonymousEventBody, Event};
use super::identify::IdentifyRequest;
use super::metrics::DeliveryMetricReport;
use super::segments::{SegmentIdType, SegmentIdsBody, check_segment_ids};
use crate::error::Error;
use crate::http::Body;
use crate::identifier::{Identifier, encode_path_segment};
use crate::limits;
use crate::track::TrackClient;

#[derive(Serialize)]
struct MergeBody<'a> {
    primary: &'a Identifier,
    secondary: &'a Identifier,
}

impl TrackClient {
    /// Creates or updates a person (`PUT /api/v1/customers/{identifier}`).
    ///
    /// `attributes` is the flat body: custom attributes plus the reserved keys (`email`,
    /// `created_at`, `anonymous_id`, `_timestamp`, `_update`, …). The attribute limits are
    /// checked before sending. [`identify_with`](Self::identify_with) takes a typed body.
    ///
    /// Beware: when the path and body identifiers belong to different people the server still
    /// answers `200` and only its activity log shows the failed update.
    pub async fn identify(
        &self,
        person: &Identifier,
        attributes: &Map<String, Value>,
    ) -> Result<(), Error> {
        const OP: &str = "track.v1.identify";
        let path = person_path(OP, person)?;
        limits::check_attributes(OP, "identify attributes", attributes)?;
        let body = Body::json(OP, attributes)?;
        self.transport
            .send(OP, Method::PUT, &path, &[], body)
            .await?;
        Ok(())
    }

    /// Creates or updates a person from a typed [`IdentifyRequest`]
    /// (`PUT /api/v1/customers/{identifier}`). Idempotent.
    pub async fn identify_with(
        &self,
        person: &Identifier,
        request: &IdentifyRequest,
    ) -> Result<(), Error> {
        const OP: &str = "track.v1.identify";
        let path = person_path(OP, person)?;
        let body = Body::json(OP, &request.to_body(OP)?)?;
        self.transport
            .send(OP, Method::PUT, &path, &[], body)
            .await?;
        Ok(())
    }

    /// Deletes a person and their data (`DELETE /api/v1/customers/{identifier}`). A later
    /// call that identifies them creates them again. Idempotent.
    pub async fn delete(&self, person: &Identifier) -> Result<(), Error> {
        const OP: &str = "track.v1.delete";
        let path = person_path(OP, person)?;
        self.transport
            .send(OP, Method::DELETE, &path, &[], Body::None)
            .await?;
        Ok(())
    }

    /// Deletes a person **and** blocks their identifiers from being added again
    /// (`POST /api/v1/customers/{identifier}/suppress`). Meant for GDPR/CCPA erasure; the data
    /// cannot be restored. Idempotent.
    pub async fn suppress(&self, person: &Identifier) -> Result<(), Error> {
        const OP: &str = "track.v1.suppress";
        let path = format!("{}/suppress", person_path(OP, person)?);
        self.transport
            .send(OP, Method::POST, &path, &[], Body::None)
            .await?;
        Ok(())
    }

    /// Frees a suppressed person's identifiers
    /// (`POST /api/v1/customers/{identifier}/unsuppress`). The old profile is not restored;
    /// the next identify creates a new person. Idempotent.
    pub async fn unsuppress(&self, person: &Identifier) -> Result<(), Error> {
        const OP: &str = "track.v1.unsuppress";
        let path = format!("{}/unsuppress", person_path(OP, person)?);
        self.transport
            .send(OP, Method::POST, &path, &[], Body::None)
            .await?;
        Ok(())
    }

    /// Records an event, page view or screen view for a person
    /// (`POST /api/v1/customers/{identifier}/events`). Safe to resend only with an event id
    /// ([`Event::idempotency`]).
    pub async fn track(&self, person: &Identifier, event: &Event) -> Result<(), Error> {
        const OP: &str = "track.v1.event";
        let path = format!("{}/events", person_path(OP, person)?);
        event.validate(OP)?;
        let body = Body::json(OP, event)?;
        self.transport
            .send(OP, Method::POST, &path, &[], body)
            .await?;
        Ok(())
    }

    /// Records an event, page view or screen view for someone not identified yet
    /// (`POST /api/v1/events`).
    ///
    /// `anonymous_id` (a cookie id, …) lets a later identify that sets the same
    /// `anonymous_id` attach these events to the person (last 30 days, when event merging is
    /// on). Anonymous events cannot trigger campaigns themselves. `None` sends no
    /// `anonymous_id` (with a `recipient` in the data that is a legacy "invite" event); an
    /// empty string is refused. Safe to resend only with an event id.
    pub async fn track_anonymous(
        &self,
        anonymous_id: Option<&str>,
        event: &Event,
    ) -> Result<(), Error> {
        const OP: &str = "track.v1.anonymous_event";
        if anonymous_id.is_some_and(str::is_empty) {
            return Err(Error::invalid(
                OP,
                "anonymous_id is empty; pass None to leave it out",
            ));
        }
        event.validate(OP)?;
        let body = Body::json(
            OP,
            &AnonymousEventBody {
                anonymous_id,
                event,
            },
        )?;
        self.transport
            .send(OP, Method::POST, "/api/v1/events", &[], body)
            .await?;
        Ok(())
    }

    /// Adds a push device to a person or updates it
    /// (`PUT /api/v1/customers/{identifier}/devices`). Idempotent (keyed by the token).
    pub async fn add_device(&self, person: &Identifier, device: &Device) -> Result<(), Error> {
        const OP: &str = "track.v1.add_device";
        let path = format!("{}/devices", person_path(OP, person)?);
        device.validate(OP)?;
        let body = Body::json(OP, &DeviceBody { device })?;
        self.transport
            .send(OP, Method::PUT, &path, &[], body)
            .await?;
        Ok(())
    }

    /// Removes a person's device by its token
    /// (`DELETE /api/v1/customers/{identifier}/devices/{token}`, token percent-encoded).
    /// Sending the device again later adds it back. Idempotent.
    pub async fn delete_device(&self, person: &Identifier, token: &str) -> Result<(), Error> {
        const OP: &str = "track.v1.delete_device";
        let person = person_path(OP, person)?;
        if token.is_empty() {
            return Err(Error::invalid(OP, "device token is empty"));
        }
        let path = format!("{person}/devices/{}", encode_path_segment(token));
        self.transport
            .send(OP, Method::DELETE, &path, &[], Body::None)
            .await?;
        Ok(())
    }

    /// Merges `secondary` into `primary` (`POST /api/v1/merge_customers`).
    ///
    /// Each side is an id, email or `cio_id` (sent raw, without the `cio_` prefix); a phone is
    /// refused, and so is merging a person with the same identifier. The secondary person is
    /// **deleted** and the merge cannot be undone; the primary must already exist or nothing
    /// happens. A second copy therefore does nothing (its secondary is gone): resending after a
    /// timeout is harmless, and [`Idempotency::MERGE`](crate::retry::Idempotency::MERGE) says so
    /// to [`retry`](crate::retry::retry); pass `Idempotency::NotIdempotent` to never resend.
    ///
    /// ```no_run
    /// # async fn run(client: customerio_client::TrackClient) -> Result<(), customerio_client::Error> {
    /// use customerio_client::Identifier;
    /// client.merge(&Identifier::id("user-42"), &Identifier::email("old-address@example.com")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn merge(&self, primary: &Identifier, secondary: &Identifier) -> Result<(), Error> {
        const OP: &str = "track.v1.merge";
        check_person(OP, "primary", primary)?;
        check_person(OP, "secondary", secondary)?;
        if primary == secondary {
            return Err(Error::invalid(
                OP,
                "primary and secondary are the same identifier",
            ));
        }
        let body = Body::json(OP, &MergeBody { primary, secondary })?;
        self.transport
            .send(OP, Method::POST, "/api/v1/merge_customers", &[], body)
            .await?;
        Ok(())
    }

    /// Reports a delivery metric (`POST /api/v1/metrics`), e.g. an open or click your own
    /// systems observed. The endpoint does not need credentials; this client sends them
    /// anyway. Not idempotent (no de-duplication is documented).
    pub async fn report_metric(&self, report: &DeliveryMetricReport) -> Result<(), Error> {
        const OP: &str = "track.v1.metrics";
        report.validate(OP)?;
        let body = Body::json(OP, report)?;
        self.transport
            .send(OP, Method::POST, "/api/v1/metrics", &[], body)
            .await?;
        Ok(())
    }

    /// Adds people to a manual segment
    /// (`POST /api/v1/segments/{segment_id}/add_customers?id_type=…`, body `{"ids": […]}`).
    ///
    /// `ids` holds 1 to 1000 values of the kind `id_type` names (checked before sending;
    /// person ids at most 150 bytes). `id_type` is always sent, `id` included, although `id`
    /// is the server's default: the request then says what it means. Entries that match nobody
    /// are ignored by the server without an error. `cio_id` values are sent as given. The
    /// segment must be a manual one and must exist. Idempotent.
    ///
    /// ```no_run
    /// # async fn run(client: customerio_client::TrackClient) -> Result<(), customerio_client::Error> {
    /// use customerio_client::track::v1::SegmentIdType;
    /// client.add_to_segment(7, SegmentIdType::Email, &["ada@example.com", "bob@example.com"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_to_segment<S: AsRef<str>>(
        &self,
        segment_id: u64,
        id_type: SegmentIdType,
        ids: &[S],
    ) -> Result<(), Error> {
        const OP: &str = "track.v1.segment_add";
        self.segment_membership(OP, "add_customers", segment_id, id_type, ids)
            .await
    }

    /// Removes people from a manual segment
    /// (`POST /api/v1/segments/{segment_id}/remove_customers?id_type=…`). Same rules as
    /// [`add_to_segment`](Self::add_to_segment). Idempotent.
    pub async fn remove_from_segment<S: AsRef<str>>(
        &self,
        segment_id: u64,
        id_type: SegmentIdType,
        ids: &[S],
    ) -> Result<(), Error> {
        const OP: &str = "track.v1.segment_remove";
        self.segment_membership(OP, "remove_customers", segment_id, id_type, ids)
            .await
    }

    async fn segment_membership<S: AsRef<str>>(
        &self,
        operation: &'static str,
        action: &str,
        segment_id: u64,
        id_type: SegmentIdType,
        ids: &[S],
    ) -> Result<(), Error> {
        check_segment_ids(operation, id_type, ids)?;
        let body = Body::json(operation, &SegmentIdsBody { ids })?;
        self.transport
            .send(
                operation,
                Method::POST,
                &format!("/api/v1/segments/{segment_id}/{action}"),
                &[("id_type", id_type.as_str())],
                body,
            )
            .await?;
        Ok(())
    }
}
