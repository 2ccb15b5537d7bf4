//! (filled in by the timestamp work item)
