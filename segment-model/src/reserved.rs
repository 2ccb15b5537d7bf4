//! (filled in by the reserved work item)
