//! (filled in by the spec work item)
