//! The use cases, one module each, built from the stores, the identity resolver and the
//! dispatcher.
//!
//! - [`churn`]: churn prevention — activity per person and a scan the host schedules, which
//!   enrols inactive people into re-engagement (an event and an attribute in Customer.io) and
//!   notices when they come back;
//! - [`audience`]: audience sync — Segment Engage audience enter/exit → Customer.io manual
//!   segment add/remove, newest change first.

pub mod audience;
pub mod churn;
