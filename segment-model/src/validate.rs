//! (filled in by the validate work item)
