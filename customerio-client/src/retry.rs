//! (filled in by the retry work item)
