//! (filled in by the track::v1 work item)
