//! What the loader yields, and the counts it keeps.
use serde::Serialize;

/// A batch of normalised images and soft labels, as plain buffers (one call turns each into a
/// tensor).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `n × 3 × h × w`, normalised, CHW per image.
    pub images: Vec<f32>,
    /// `n × num_classes` soft labels, each row summing to 1.
    pub targets: Vec<f32>,
    /// The data-set index of each sample.
    pub indices: Vec<usize>,
    /// Whether each sample is a De-DA combination.
    pub combined: Vec<bool>,
    /// Number of samples (failed samples are left out, so it may be below the batch size).
    pub n: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Label width.
    pub num_classes: usize,
}

/// Counts over the batches yielded so far in an epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EpochStats {
    /// Samples yielded.
    pub samples: usize,
    /// Of which combinations.
    pub combined: usize,
    /// Drawn for combination but without a CDP, so kept real.
    pub no_cdp: usize,
    /// Drawn for combination but the bank has no CIP, so kept real.
    pub no_cip: usize,
    /// Combinations whose CIP had to come from any class (none allowed by `cip_source`).
    pub cip_fallback: usize,
    /// Combinations with `placement = "original"` where a CDP's home was unknown.
    pub home_unavailable: usize,
    /// Mixing drawn but no other class has a CDP.
    pub mix_unavailable: usize,
    /// Combinations with two CDPs.
    pub mixed: usize,
    /// Combinations where no CDP was visible (label fell back to the first CDP's class).
    pub label_fallback: usize,
    /// CDP layers that were synthetic edits.
    pub synthetic_layers: usize,
    /// Samples that failed and were skipped.
    pub bad: usize,
    /// The last failures, `id: error` (at most 10).
    pub last_bad: Vec<String>,
}

impl EpochStats {
    pub(crate) fn merge(&mut self, o: &EpochStats) {
        self.samples += o.samples;
        self.combined += o.combined;
        self.no_cdp += o.no_cdp;
        self.no_cip += o.no_cip;
        self.cip_fallback += o.cip_fallback;
        self.home_unavailable += o.home_unavailable;
        self.mix_unavailable += o.mix_unavailable;
        self.mixed += o.mixed;
        self.label_fallback += o.label_fallback;
        self.synthetic_layers += o.synthetic_layers;
        self.bad += o.bad;
        self.last_bad.extend(o.last_bad.iter().cloned());
        let extra = self.last_bad.len().saturating_sub(10);
        self.last_bad.drain(..extra);
    }
}
