//! (filled in by the app::segments work item)
