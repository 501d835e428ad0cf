//! drift: filled in by its own change.
pub mod py;
