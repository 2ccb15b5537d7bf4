//! Profile API reader.
