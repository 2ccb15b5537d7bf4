//! (filled in by the message work item)
