//! (filled in by the identifier work item)
