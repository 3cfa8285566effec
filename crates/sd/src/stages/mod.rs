//! The stages the binary runs on a part bank, beyond the editor ([`crate::pipelines::sdedit`]):
//!
//! - [`ttti`]: truncated-timestep textual inversion (the algorithm), [`ttti::stage`] (`deda
//!   invert`: one learned token per class of a bank) and [`ttti::store`] (where the tokens live);
//! - [`bench`](mod@bench): `deda bench sdedit` / `deda bench ttti-step` timings.
pub mod bench;
pub mod lora_ti;
pub mod ttti;
