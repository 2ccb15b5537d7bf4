//! (filled in by the builder work item)
