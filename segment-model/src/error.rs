//! (filled in by the error work item)
