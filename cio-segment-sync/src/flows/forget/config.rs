//! What the forget flow is asked to do. The flow has no section of its own in the
//! configuration file: its [builder](super::ForgetFlowBuilder) takes the identity rules, the
//! deduper and the stores to forget in, and each deletion says which [`ForgetAction`]
//! Customer.io gets.

/// What Customer.io is asked to do with a forgotten person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForgetAction {
    /// Delete the person (v2 person `delete`).
    Delete,
    /// Delete the person and keep their identifiers from coming back (v2 person `suppress`).
    Suppress,
}
