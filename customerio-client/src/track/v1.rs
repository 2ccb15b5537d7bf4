//! Track API v1 calls (`/api/v1`): people, events, devices, merges, segments, metrics.

use reqwest::Method;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::http::Body;
use crate::identifier::Identifier;
use crate::limits;
use crate::track::TrackClient;

impl TrackClient {
    /// Creates or updates a person (`PUT /api/v1/customers/{identifier}`).
    ///
    /// `attributes` is the flat body: custom attributes plus the reserved keys (`email`,
    /// `created_at`, `anonymous_id`, `_timestamp`, `_update`, …). The attribute limits are
    /// checked before sending.
    pub async fn identify(
        &self,
        person: &Identifier,
        attributes: &Map<String, Value>,
    ) -> Result<(), Error> {
        const OP: &str = "track.v1.identify";
        let segment = person.v1_path_segment()?;
        limits::check_attributes(OP, "identify attributes", attributes)?;
        let body = Body::json(OP, attributes)?;
        self.transport
            .send(
                OP,
                Method::PUT,
                &format!("/api/v1/customers/{segment}"),
                &[],
                body,
            )
            .await?;
        Ok(())
    }
}
