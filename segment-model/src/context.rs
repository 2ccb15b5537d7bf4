//! (filled in by the context work item)
