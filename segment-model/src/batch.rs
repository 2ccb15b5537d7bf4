//! (filled in by the batch work item)
