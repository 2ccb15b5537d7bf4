//! (filled in by the audience work item)
