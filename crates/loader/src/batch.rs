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

impl Batch {
    /// Image `k` as 8-bit RGB: the loader's normalisation with `mean` and `std` (the
    /// [`crate::LoaderConfig`]'s) undone, rounded and clamped to 0..=255.
    ///
    /// # Panics
    /// If `k >= self.n`.
    pub fn image_rgb(&self, k: usize, mean: [f32; 3], std: [f32; 3]) -> image::RgbImage {
        assert!(k < self.n, "image {k} of a batch of {}", self.n);
        let (h, w) = (self.h, self.w);
        let plane = h * w;
        let base = k * 3 * plane;
        image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let i = y as usize * w + x as usize;
            let c = |ch: usize| {
                let v = self.images[base + ch * plane + i] * std[ch] + mean[ch];
                (v * 255.0).round().clamp(0.0, 255.0) as u8
            };
            image::Rgb([c(0), c(1), c(2)])
        })
    }

    /// Sample `k`'s soft label as `"name weight"` pairs (weights with two decimals), largest
    /// first, classes with weight at most 1e-4 left out; a class without a name is `?`.
    ///
    /// # Panics
    /// If `k >= self.n`.
    pub fn describe_target(&self, k: usize, names: &[String]) -> String {
        assert!(k < self.n, "sample {k} of a batch of {}", self.n);
        let row = &self.targets[k * self.num_classes..(k + 1) * self.num_classes];
        let mut parts: Vec<(usize, f32)> = row
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, v)| *v > 1e-4)
            .collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts
            .iter()
            .map(|(c, v)| format!("{} {v:.2}", names.get(*c).map_or("?", String::as_str)))
            .collect::<Vec<_>>()
            .join(", ")
    }
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
    /// Samples replaced by a generated whole image (the generative peers).
    pub generated: usize,
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
        self.generated += o.generated;
        self.bad += o.bad;
        self.last_bad.extend(o.last_bad.iter().cloned());
        let extra = self.last_bad.len().saturating_sub(10);
        self.last_bad.drain(..extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_pixel_batch() -> Batch {
        // Two 1×2 images, 3 classes; image 1's red channel is 1.0 and -1.0 after normalisation.
        let mut images = vec![0.0; 2 * 3 * 2];
        images[6] = 1.0;
        images[7] = -1.0;
        Batch {
            images,
            targets: vec![1.0, 0.0, 0.0, 0.25, 0.0, 0.75],
            indices: vec![0, 1],
            combined: vec![false, true],
            n: 2,
            h: 1,
            w: 2,
            num_classes: 3,
        }
    }

    #[test]
    fn images_are_denormalised_and_clamped() {
        let b = two_pixel_batch();
        let mean = [0.5, 0.25, 0.0];
        let std = [0.25, 0.5, 1.0];
        let img = b.image_rgb(1, mean, std);
        assert_eq!(img.dimensions(), (2, 1));
        // 1.0 * 0.25 + 0.5 = 0.75 -> 191; -1.0 * 0.25 + 0.5 = 0.25 -> 64; green 0.25 -> 64.
        assert_eq!(img.get_pixel(0, 0).0, [191, 64, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [64, 64, 0]);
        let clamped = Batch {
            images: vec![10.0; 6],
            ..two_pixel_batch()
        };
        assert_eq!(
            clamped.image_rgb(0, mean, std).get_pixel(0, 0).0,
            [255, 255, 255]
        );
    }

    #[test]
    fn targets_are_named_largest_first() {
        let b = two_pixel_batch();
        let names = vec!["cat".to_string(), "dog".to_string()];
        assert_eq!(b.describe_target(0, &names), "cat 1.00");
        assert_eq!(b.describe_target(1, &names), "? 0.75, cat 0.25");
    }
}
