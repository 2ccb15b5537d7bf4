//! (filled in by the limits work item)
