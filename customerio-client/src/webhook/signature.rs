//! (filled in by the webhook::signature work item)
