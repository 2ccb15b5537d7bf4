//! (filled in by the app::people work item)
