//! (filled in by the secret work item)
