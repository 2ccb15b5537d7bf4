//! (filled in by the track::v2 work item)
