//! CLIP's ftfy-less text cleaning: moved to [`deda_core::text_clean`] (GroundingDINO's BERT
//! tokenizer shares it), re-exported here for `deda_edit::text_clean` callers.
pub use deda_core::text_clean::clean_text;
