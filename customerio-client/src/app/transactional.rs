//! (filled in by the app::transactional work item)
