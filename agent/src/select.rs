//! Framework selection, platform validation and device fallback.
