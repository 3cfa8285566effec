//! Applying [`CombineParams`]: the pure, deterministic composition of one combined sample.
use crate::error::{Error, Result};
use crate::params::CombineParams;
use crate::resize::Resizer;
use crate::warp::{Coverage, Placement, Texture};
use deda_core::{ClassId, PartId};
use image::{RgbImage, RgbaImage};

/// Below this pixel scale the CDP is first box-reduced so that it does not alias.
const BOX_REDUCE_BELOW: f32 = 0.5;

/// A composed sample and its soft label.
#[derive(Debug, Clone, PartialEq)]
pub struct Composite {
    /// The combined image, `out_w × out_h`.
    pub image: RgbImage,
    /// Label weights merged per class, in order of first appearance; they sum to 1.
    pub weights: Vec<(ClassId, f32)>,
    /// Per layer, its visible alpha-weighted area in canvas pixels after occlusion.
    pub visible: Vec<f32>,
    /// No layer is visible at all, so the label fell back to the first layer's class.
    pub label_fallback: bool,
}

/// Scratch buffers reused from one [`compose`] call to the next (one per thread).
#[derive(Debug, Default, Clone)]
pub struct Compositor {
    resizer: Resizer,
    texture: Texture,
    coverage: Vec<Coverage>,
    transmit: Vec<u8>,
    /// A finished canvas handed back by [`Compositor::recycle`], reused by the next call.
    spare: Vec<u8>,
}

impl Compositor {
    /// Empty scratch space; buffers grow on first use and are then reused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hands a composed image back once the caller is done with it, so the next [`compose`]
    /// draws on it instead of allocating a canvas (its pixels are all overwritten).
    pub fn recycle(&mut self, image: RgbImage) {
        self.spare = image.into_raw();
    }

    /// A `w × h` canvas: the recycled one if any (contents stale), else a new one.
    fn canvas(&mut self, w: u32, h: u32) -> RgbImage {
        let mut buf = std::mem::take(&mut self.spare);
        buf.resize(w as usize * h as usize * 3, 0);
        RgbImage::from_raw(w, h, buf).unwrap_or_else(|| RgbImage::new(w, h))
    }
}

/// Composes `params` onto a `out_w × out_h` canvas: the CIP resized to cover it, then each CDP
/// layer (`cdps[i]` for `params.layers[i]`) scaled, flipped, rotated and pasted "over" it.
///
/// The label weights are each layer's visible alpha area (its alpha times the transparency of
/// every later layer, summed over pixels), merged per class and normalised to sum to 1.
///
/// # Errors
/// [`Error::Params`] for invalid params, [`Error::LayerCount`] if `cdps` does not match the
/// layers, [`Error::EmptyImage`] for an empty CIP, CDP or canvas.
pub fn compose(
    cip: &RgbImage,
    cdps: &[&RgbaImage],
    params: &CombineParams,
    out_w: u32,
    out_h: u32,
    scratch: &mut Compositor,
) -> Result<Composite> {
    check_inputs(cip, cdps, params, out_w, out_h)?;
    let mut image = scratch.canvas(out_w, out_h);
    // Writes every pixel, so a recycled canvas's old contents never show.
    scratch.resizer.resize_cover(cip, &mut image);
    scratch
        .coverage
        .resize_with(params.layers.len(), Coverage::default);
    let short = out_w.min(out_h) as f32;
    for ((layer, cdp), cov) in params.layers.iter().zip(cdps).zip(&mut scratch.coverage) {
        let long = cdp.width().max(cdp.height()) as f32;
        let scale = layer.scale * short / long;
        let k = if scale < BOX_REDUCE_BELOW {
            ((1.0 / scale).floor() as u32).max(2)
        } else {
            1
        };
        scratch.texture.load(cdp, k);
        let logical = (
            cdp.width() as f32 / k as f32,
            cdp.height() as f32 / k as f32,
        );
        let placement = Placement {
            scale: scale * k as f32,
            center: layer.center,
            flip: layer.flip,
            rotation_deg: layer.rotation_deg,
        };
        scratch.texture.paste(logical, placement, &mut image, cov);
    }
    let coverage = &scratch.coverage[..params.layers.len()];
    let visible = visible_areas(coverage, out_w, out_h, &mut scratch.transmit);
    let (weights, label_fallback) = class_weights(params, &visible);
    Ok(Composite {
        image,
        weights,
        visible,
        label_fallback,
    })
}

fn check_inputs(
    cip: &RgbImage,
    cdps: &[&RgbaImage],
    params: &CombineParams,
    out_w: u32,
    out_h: u32,
) -> Result<()> {
    params.validate().map_err(|source| Error::Params {
        cip: params.cip.clone(),
        source,
    })?;
    if cdps.len() != params.layers.len() {
        return Err(Error::LayerCount {
            cip: params.cip.clone(),
            layers: params.layers.len(),
            images: cdps.len(),
        });
    }
    let empty = |what, part: &PartId, (width, height): (u32, u32)| Error::EmptyImage {
        what,
        part: part.clone(),
        width,
        height,
    };
    if out_w == 0 || out_h == 0 {
        return Err(empty("canvas", &params.cip, (out_w, out_h)));
    }
    if cip.width() == 0 || cip.height() == 0 {
        return Err(empty("CIP", &params.cip, cip.dimensions()));
    }
    for (l, c) in params.layers.iter().zip(cdps) {
        if c.width() == 0 || c.height() == 0 {
            return Err(empty("CDP", &l.cdp, c.dimensions()));
        }
    }
    Ok(())
}

/// Visible area of each layer: alpha times the transmittance of all later layers, summed.
fn visible_areas(coverage: &[Coverage], w: u32, h: u32, transmit: &mut Vec<u8>) -> Vec<f32> {
    let mut visible = vec![0f32; coverage.len()];
    if coverage.len() == 1 {
        let sum: u64 = coverage[0].alpha.iter().map(|&a| u64::from(a)).sum();
        visible[0] = sum as f32 / 255.0;
        return visible;
    }
    transmit.clear();
    transmit.resize(w as usize * h as usize, 255);
    for (cov, vis) in coverage.iter().zip(visible.iter_mut()).rev() {
        let mut sum = 0u64;
        for (r, arow) in cov.alpha.chunks_exact(cov.w.max(1) as usize).enumerate() {
            let start = (cov.y0 as usize + r) * w as usize + cov.x0 as usize;
            let trow = &mut transmit[start..start + arow.len()];
            for (t, &a) in trow.iter_mut().zip(arow) {
                let (tu, au) = (u32::from(*t), u32::from(a));
                sum += u64::from(au * tu);
                *t = ((((tu * (255 - au)) + 128) * 257) >> 16) as u8;
            }
        }
        *vis = sum as f32 / (255.0 * 255.0);
    }
    visible
}

/// Merges the visible areas per class and normalises them; falls back to the first layer's
/// class with weight 1 if nothing is visible.
fn class_weights(params: &CombineParams, visible: &[f32]) -> (Vec<(ClassId, f32)>, bool) {
    let total: f32 = visible.iter().sum();
    let first = params.layers.first().map(|l| l.class).unwrap_or(ClassId(0));
    if total <= 0.0 || !total.is_finite() {
        return (vec![(first, 1.0)], true);
    }
    let mut weights: Vec<(ClassId, f32)> = Vec::with_capacity(visible.len());
    for (l, &v) in params.layers.iter().zip(visible) {
        match weights.iter_mut().find(|(c, _)| *c == l.class) {
            Some((_, w)) => *w += v / total,
            None => weights.push((l.class, v / total)),
        }
    }
    (weights, false)
}
