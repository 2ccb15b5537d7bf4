//! (filled in by the webhook::payload work item)
