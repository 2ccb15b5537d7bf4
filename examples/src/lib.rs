//! Code the runnable examples in `examples/examples/` share, kept in a library so the tests in
//! `tests/` can check it: a house identity rule ([`custom_identity`]) and an in-memory queue
//! with a consumer that acks by the library's one ack rule ([`worker`]).

pub mod custom_identity;
pub mod worker;
