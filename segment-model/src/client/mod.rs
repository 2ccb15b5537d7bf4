//! Segment HTTP clients (feature `client`): the Tracking API writer and the Profile API reader.

pub mod profile;
pub mod tracking;
