//! (filled in by the integrations work item)
