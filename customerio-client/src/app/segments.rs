//! Segments on the App API: create, list, read and delete manual segments, count and page
//! through a segment's members, and list the segments a person belongs to.
//!
//! Adding people to and removing them from a manual segment is a **Track** API call
//! (`add_customers` / `remove_customers` on the Track host), not part of this module. Create the
//! segment here first: those calls only work on an existing manual segment.

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::AppClient;
use crate::app::people::{
    PageRequest, PagerSource, PeoplePage, PeoplePager, PersonRef, query_refs,
};
use crate::error::Error;
use crate::http::Body;

/// A segment as the App API describes it.
///
/// The segment listings of a person carry fewer fields than a segment read by id; the missing
/// ones read as `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The segment id (used in paths, in filters and by the Track API membership calls).
    pub id: u64,
    /// A key Customer.io derives from the id and a time, e.g. `"7:1717171717"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplicate_id: Option<String>,
    /// The segment name.
    pub name: String,
    /// The description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Build state, as Customer.io reports it (values not documented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Build progress, as Customer.io reports it (type not documented, so kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    /// Manual or data-driven.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub segment_type: Option<SegmentType>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The kind of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum SegmentType {
    /// Membership is set through the Track API.
    Manual,
    /// Membership follows data (attributes, events); it cannot be changed by hand.
    Dynamic,
    /// A kind this crate does not know, kept as read.
    Other(String),
}

impl SegmentType {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            SegmentType::Manual => "manual",
            SegmentType::Dynamic => "dynamic",
            SegmentType::Other(other) => other,
        }
    }
}

impl From<String> for SegmentType {
    fn from(value: String) -> Self {
        match value.as_str() {
            "manual" => SegmentType::Manual,
            "dynamic" => SegmentType::Dynamic,
            _ => SegmentType::Other(value),
        }
    }
}

impl From<SegmentType> for String {
    fn from(value: SegmentType) -> Self {
        match value {
            SegmentType::Other(other) => other,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for SegmentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A manual segment to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NewSegment {
    /// The name (required, not empty).
    pub name: String,
    /// An optional description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl NewSegment {
    /// A segment named `name`, without a description.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: None,
        }
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

#[derive(Serialize)]
struct NewSegmentBody<'a> {
    segment: &'a NewSegment,
}

#[derive(Deserialize)]
struct SegmentEnvelope {
    segment: Segment,
}

#[derive(Deserialize)]
struct SegmentsEnvelope {
    #[serde(default)]
    segments: Vec<Segment>,
}

#[derive(Deserialize)]
struct CountEnvelope {
    count: u64,
}

impl AppClient {
    /// Creates a manual segment (`POST /v1/segments`) and returns it, id included.
    ///
    /// ```no_run
    /// # async fn run(client: customerio_client::AppClient) -> Result<(), customerio_client::Error> {
    /// use customerio_client::app::segments::NewSegment;
    ///
    /// let segment = client
    ///     .create_segment(&NewSegment::new("Engage: high intent").with_description("from Segment"))
    ///     .await?;
    /// println!("created segment {}", segment.id);
    /// # Ok(()) }
    /// ```
    pub async fn create_segment(&self, segment: &NewSegment) -> Result<Segment, Error> {
        const OP: &str = "app.segments.create";
        if segment.name.trim().is_empty() {
            return Err(Error::invalid(OP, "segment.name is empty"));
        }
        let body = Body::json(OP, &NewSegmentBody { segment })?;
        let response = self
            .transport
            .send(OP, Method::POST, "/v1/segments", &[], body)
            .await?;
        Ok(response.json::<SegmentEnvelope>(OP)?.segment)
    }

    /// Every segment of the workspace (`GET /v1/segments`).
    pub async fn list_segments(&self) -> Result<Vec<Segment>, Error> {
        const OP: &str = "app.segments.list";
        let response = self
            .transport
            .send(OP, Method::GET, "/v1/segments", &[], Body::None)
            .await?;
        Ok(response.json::<SegmentsEnvelope>(OP)?.segments)
    }

    /// One segment (`GET /v1/segments/{segment_id}`); an unknown id is a `404` error.
    pub async fn get_segment(&self, segment_id: u64) -> Result<Segment, Error> {
        const OP: &str = "app.segments.get";
        let response = self
            .transport
            .send(
                OP,
                Method::GET,
                &format!("/v1/segments/{segment_id}"),
                &[],
                Body::None,
            )
            .await?;
        Ok(response.json::<SegmentEnvelope>(OP)?.segment)
    }

    /// Deletes a manual segment (`DELETE /v1/segments/{segment_id}`); an unknown id is a `404`
    /// error.
    pub async fn delete_segment(&self, segment_id: u64) -> Result<(), Error> {
        const OP: &str = "app.segments.delete";
        self.transport
            .send(
                OP,
                Method::DELETE,
                &format!("/v1/segments/{segment_id}"),
                &[],
                Body::None,
            )
            .await?;
        Ok(())
    }

    /// How many people are in a segment (`GET /v1/segments/{segment_id}/customer_count`).
    pub async fn segment_customer_count(&self, segment_id: u64) -> Result<u64, Error> {
        const OP: &str = "app.segments.customer_count";
        let response = self
            .transport
            .send(
                OP,
                Method::GET,
                &format!("/v1/segments/{segment_id}/customer_count"),
                &[],
                Body::None,
            )
            .await?;
        Ok(response.json::<CountEnvelope>(OP)?.count)
    }

    /// One page of a segment's members
    /// (`GET /v1/segments/{segment_id}/membership?start=…&limit=…`).
    ///
    /// The largest page size is not documented, so only `limit = 0` is refused locally. To walk
    /// every page use [`AppClient::segment_members`].
    pub async fn segment_membership(
        &self,
        segment_id: u64,
        page: &PageRequest,
    ) -> Result<PeoplePage, Error> {
        const OP: &str = "app.segments.membership";
        let query = page.query(OP, None)?;
        let response = self
            .transport
            .send(
                OP,
                Method::GET,
                &format!("/v1/segments/{segment_id}/membership"),
                &query_refs(&query),
                Body::None,
            )
            .await?;
        response.json(OP)
    }

    /// A [`PeoplePager`] over every member of a segment, `limit` per page.
    ///
    /// ```no_run
    /// # async fn run(client: customerio_client::AppClient) -> Result<(), customerio_client::Error> {
    /// let mut pages = client.segment_members(7, Some(1000));
    /// let mut count = 0;
    /// while let Some(page) = pages.next_page().await? {
    ///     count += page.identifiers.len();
    /// }
    /// # Ok(()) }
    /// ```
    pub fn segment_members(&self, segment_id: u64, limit: Option<u32>) -> PeoplePager {
        PeoplePager::new(self.clone(), PagerSource::Segment(segment_id), limit)
    }

    /// The segments a person belongs to (`GET /v1/customers/{customer_id}/segments?id_type=…`).
    pub async fn customer_segments(
        &self,
        person: impl Into<PersonRef>,
    ) -> Result<Vec<Segment>, Error> {
        const OP: &str = "app.segments.of_customer";
        let (segment, id_type) = person.into().path_segment(OP)?;
        let response = self
            .transport
            .send(
                OP,
                Method::GET,
                &format!("/v1/customers/{segment}/segments"),
                &[("id_type", id_type)],
                Body::None,
            )
            .await?;
        Ok(response.json::<SegmentsEnvelope>(OP)?.segments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn segment_fixture_round_trips_and_keeps_unknown_fields() {
        let fixture = json!({
            "id": 7, "deduplicate_id": "7:1717171717", "name": "High intent",
            "description": "from Segment", "state": "finished", "progress": 100,
            "type": "manual", "tags": ["engage"], "created_at": 1717171717
        });
        let segment: Segment = serde_json::from_value(fixture.clone()).unwrap();
        assert_eq!(segment.segment_type, Some(SegmentType::Manual));
        assert_eq!(segment.extra.get("created_at"), Some(&json!(1717171717)));
        assert_eq!(serde_json::to_value(&segment).unwrap(), fixture);
        let text = serde_json::to_string(&segment).unwrap();
        assert_eq!(text.matches("\"created_at\"").count(), 1);
    }

    #[test]
    fn unknown_segment_type_is_kept() {
        let segment: Segment =
            serde_json::from_value(json!({"id": 1, "name": "x", "type": "predictive"})).unwrap();
        assert_eq!(
            segment.segment_type,
            Some(SegmentType::Other("predictive".into()))
        );
        assert_eq!(
            serde_json::to_value(&segment).unwrap()["type"],
            "predictive"
        );
    }
}
