//! (filled in by the app::broadcast work item)
