//! Reports a person reads: markdown with pictures.
pub mod contact_sheet;
