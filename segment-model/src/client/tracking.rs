//! Tracking API writer.
