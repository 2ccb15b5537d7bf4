//! Reporting webhooks: payloads and signature check.

pub mod payload;
pub mod signature;
