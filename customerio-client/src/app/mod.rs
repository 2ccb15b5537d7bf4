//! App API client.

pub mod broadcast;
pub mod filter;
pub mod people;
pub mod segments;
pub mod transactional;
