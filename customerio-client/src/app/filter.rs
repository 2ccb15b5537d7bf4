//! (filled in by the app::filter work item)
