//! (filled in by the signature work item)
