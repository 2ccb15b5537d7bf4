//! (filled in by the event_id work item)
