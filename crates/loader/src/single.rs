//! One sample at a time, for a map-style data set (PyTorch's `Dataset.__getitem__`).
//!
//! [`SampleReader`] runs the loader's own per-sample path (combination decision, composing or
//! decoding, crop, flip, RandAugment, normalisation) for one index and epoch, so sample `i` of
//! epoch `e` is bit for bit the image the [`Loader`] puts in its batch for that index and epoch,
//! whatever the order, batch size or thread count around it.
use crate::batch::EpochStats;
use crate::error::SampleError;
use crate::loader::Loader;
use crate::sample::{Context, Produced, Scratch};
use std::sync::Arc;

/// Produces single samples of a [`Loader`]'s data set; see the module docs. Holds its own
/// scratch buffers, so give each thread (or worker process) its own reader.
pub struct SampleReader {
    ctx: Arc<Context>,
    scratch: Scratch,
    stats: EpochStats,
}

/// The label and kind of one produced sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleInfo {
    /// Soft label, `num_classes` weights summing to 1 (the batch's target row).
    pub target: Vec<f32>,
    /// Whether the sample is a De-DA combination.
    pub combined: bool,
}

impl Loader {
    /// A reader of single samples with this loader's data set, settings and combiner.
    pub fn sample_reader(&self) -> SampleReader {
        SampleReader {
            ctx: Arc::clone(&self.ctx),
            scratch: Scratch::default(),
            stats: EpochStats::default(),
        }
    }
}

impl SampleReader {
    /// Number of samples of the data set.
    pub fn len(&self) -> usize {
        self.ctx.source.len()
    }

    /// Whether the data set has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width of a target.
    pub fn num_classes(&self) -> usize {
        self.ctx.source.num_classes()
    }

    /// Side of the square images produced (the config's `crop`).
    pub fn side(&self) -> usize {
        self.ctx.config.crop as usize
    }

    /// The stable id of sample `i` (`None` out of range).
    pub fn id(&self, i: usize) -> Option<&str> {
        (i < self.len()).then(|| self.ctx.source.id(i))
    }

    /// Counts over the samples read so far (combined, kept real for want of a part, …).
    pub fn stats(&self) -> &EpochStats {
        &self.stats
    }

    /// Writes sample `i` of `epoch`, normalised, as CHW into `out` (`3·side²` floats): the
    /// same values as its slot in the loader's batch.
    ///
    /// # Errors
    /// [`SampleError::OutOfRange`], or the sample's error naming its image file or part.
    pub fn read_f32(
        &mut self,
        i: usize,
        epoch: u64,
        out: &mut [f32],
    ) -> Result<SampleInfo, SampleError> {
        self.check(i, out.len())?;
        let p = self
            .ctx
            .produce(i, epoch, &mut self.scratch, &mut self.stats, out)?;
        Ok(self.info(p))
    }

    /// Writes sample `i` of `epoch` as CHW bytes into `out` (`3·side²`), before normalisation:
    /// [`SampleReader::read_f32`] is `(byte / 255 − mean) / std` of these per channel.
    ///
    /// # Errors
    /// As [`SampleReader::read_f32`].
    pub fn read_u8(
        &mut self,
        i: usize,
        epoch: u64,
        out: &mut [u8],
    ) -> Result<SampleInfo, SampleError> {
        self.check(i, out.len())?;
        let (img, flip, p) = self
            .ctx
            .produce_crop(i, epoch, &mut self.scratch, &mut self.stats)?;
        write_chw_u8(&img, flip, out);
        Ok(self.info(p))
    }

    fn check(&self, i: usize, out_len: usize) -> Result<(), SampleError> {
        let len = self.len();
        if i >= len {
            return Err(SampleError::OutOfRange { index: i, len });
        }
        let side = self.side();
        if out_len != 3 * side * side {
            return Err(SampleError::OutputSize {
                expected: 3 * side * side,
                got: out_len,
            });
        }
        Ok(())
    }

    fn info(&mut self, p: Produced) -> SampleInfo {
        self.stats.samples += 1;
        self.stats.combined += usize::from(p.combined);
        let mut target = vec![0.0; self.num_classes()];
        for (c, w) in p.target {
            if let Some(t) = target.get_mut(c.index()) {
                *t += w;
            }
        }
        SampleInfo {
            target,
            combined: p.combined,
        }
    }
}

/// Writes `img` (mirrored if `flip`) as CHW bytes into `out` (`3·w·h`).
fn write_chw_u8(img: &image::RgbImage, flip: bool, out: &mut [u8]) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let plane = w * h;
    for (y, row) in img.as_raw().chunks_exact(w * 3).enumerate().take(h) {
        for (x, px) in row.chunks_exact(3).enumerate() {
            let o = y * w + if flip { w - 1 - x } else { x };
            for (c, v) in px.iter().enumerate() {
                out[c * plane + o] = *v;
            }
        }
    }
}
