//! Track API client.

pub mod packer;
pub mod v1;
pub mod v2;
