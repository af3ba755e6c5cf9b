//! The origin tool's profile format and the conversion into it.
