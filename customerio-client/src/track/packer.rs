//! (filled in by the track::packer work item)
