//! Batch-level mixing methods (the baselines De-DA is compared with), and their dispatch per
//! training step.
//!
//! - [`mix`]: Mixup and CutMix (sampling separated from applying);
//! - [`saliency`]: spectral-residual and input-gradient saliency maps (GuidedMixup semantics);
//! - [`saliencymix`], [`guided`]: SaliencyMix and GuidedMixup (Guided-SR / Guided-AP);
//! - [`comixup`]: Co-Mixup (saliency-guided joint mixing of a batch by graph cuts);
//! - [`batch_mix`]: the per-step dispatch of every method ([`crate::TrainStep`]'s mixing hook).
pub mod batch_mix;
pub mod comixup;
pub mod guided;
pub mod mix;
pub mod saliency;
pub mod saliencymix;
