//! RGBA images ↔ SD-1.5 latents through LayerDiffuse's transparent encoder and decoder.
//!
//! Encoding (LayerDiffuse `TransparentVAEEncoder`): the SD VAE encodes the premultiplied image
//! `(rgb·2 − 1)·α` (transparent pixels become mid-grey); the offset encoder reads
//! `[α, pad_rgb(rgba)]` (transparent pixels filled by the alpha pyramid); the latent is the
//! posterior sample with the offset as its noise, `z = μ + σ·(s·offset)`, times the VAE's
//! `scaling_factor`. `s` is 1 for the released SD-1.5 file (LayerDiffuse_DiffusersCLI uses 300
//! for its SDXL weights). Adding the offset to the latent instead blurs the result
//! (sd-forge-layerdiffuse issue #90).
//!
//! Decoding: `pixel = clip(VAE.decode(z / scaling_factor)·0.5 + 0.5, 0, 1)`, then the
//! transparent decoder on (pixel, z/scaling_factor), with the 8-fold augmentation by default.
use std::path::{Path, PathBuf};

use deda_decouple::alpha_pyramid::{pad_rgb_f32, AlphaF32Image};
use image::imageops::{resize, FilterType};
use image::{Luma, Rgb, Rgb32FImage, RgbaImage};
use tch::{Kind, Tensor};

use super::decoder::{TransparentDecoderConfig, UNet1024};
use super::encoder::{LatentTransparencyOffsetEncoder, OffsetEncoderConfig};
use crate::error::{Error, Result};
use crate::models::vae::AutoencoderKL;
use crate::weights::{build, LoadOptions, Loaded};

/// File name of the released SD-1.5 transparent encoder.
pub const ENCODER_FILE: &str = "layer_sd15_vae_transparent_encoder.safetensors";
/// File name of the released SD-1.5 transparent decoder.
pub const DECODER_FILE: &str = "layer_sd15_vae_transparent_decoder.safetensors";

/// An RGBA image as tensors in [0, 1] (batch of one), ready for [`TransparentVae::encode`].
#[derive(Debug)]
pub struct RgbaTensor {
    /// Straight (not premultiplied) colours (1, 3, H, W).
    pub rgb: Tensor,
    /// Alpha (1, 1, H, W).
    pub alpha: Tensor,
    /// Colours with the transparent parts filled by the alpha pyramid (1, 3, H, W).
    pub padded: Tensor,
}

impl RgbaTensor {
    /// Resizes `image` to `width` × `height` (bilinear, on alpha-padded colours so that the
    /// hidden colours of transparent pixels do not bleed in) and pads its colours again at the
    /// new size (LayerDiffuse's `pad_rgb`).
    ///
    /// # Errors
    /// [`Error::Input`] for an empty image or target size.
    pub fn from_image(image: &RgbaImage, width: u32, height: u32) -> Result<Self> {
        if image.width() == 0 || image.height() == 0 || width == 0 || height == 0 {
            return Err(Error::Input(format!(
                "cannot resize a {}x{} RGBA image to {width}x{height}",
                image.width(),
                image.height()
            )));
        }
        let (rgb, alpha) = split_f32(image);
        let filled = pad(&rgb, &alpha)?;
        let rgb = resize(&filled, width, height, FilterType::Triangle);
        let alpha = resize(&alpha, width, height, FilterType::Triangle);
        let padded = pad(&rgb, &alpha)?;
        Ok(RgbaTensor {
            rgb: chw(rgb.as_raw(), 3, width, height),
            alpha: chw(alpha.as_raw(), 1, width, height),
            padded: chw(padded.as_raw(), 3, width, height),
        })
    }

    /// The SD VAE's input `(rgb·2 − 1)·α` in [-1, 1].
    pub fn vae_input(&self) -> Tensor {
        (&self.rgb * 2.0 - 1.0) * &self.alpha
    }

    /// The offset encoder's input `[α, padded rgb]`.
    pub fn encoder_input(&self) -> Tensor {
        Tensor::cat(&[&self.alpha, &self.padded], 1)
    }
}

/// Splits an 8-bit RGBA image into float colours and alpha in [0, 1].
fn split_f32(image: &RgbaImage) -> (Rgb32FImage, AlphaF32Image) {
    let f = |v: u8| f32::from(v) / 255.0;
    let rgb = Rgb32FImage::from_fn(image.width(), image.height(), |x, y| {
        let p = image.get_pixel(x, y).0;
        Rgb([f(p[0]), f(p[1]), f(p[2])])
    });
    let alpha = AlphaF32Image::from_fn(image.width(), image.height(), |x, y| {
        Luma([f(image.get_pixel(x, y).0[3])])
    });
    (rgb, alpha)
}

fn pad(rgb: &Rgb32FImage, alpha: &AlphaF32Image) -> Result<Rgb32FImage> {
    pad_rgb_f32(rgb, alpha).map_err(|e| Error::Input(format!("alpha pyramid padding: {e}")))
}

/// Interleaved HWC floats → a (1, C, H, W) tensor.
fn chw(raw: &[f32], c: i64, width: u32, height: u32) -> Tensor {
    Tensor::from_slice(raw)
        .reshape([1, i64::from(height), i64::from(width), c])
        .permute([0, 3, 1, 2])
        .contiguous()
}

/// A decoded `[α, rgb]` tensor (1, 4, H, W) in [0, 1] → an 8-bit RGBA image of
/// `width` × `height` (bilinear resize of the colours and of alpha).
///
/// # Errors
/// [`Error::Input`] if the tensor is not (1, 4, H, W) or holds NaN.
pub fn to_rgba_image(decoded: &Tensor, width: u32, height: u32) -> Result<RgbaImage> {
    let s = decoded.size();
    if s.len() != 4 || s[0] != 1 || s[1] != 4 {
        return Err(Error::Input(format!(
            "decoded RGBA must be (1, 4, H, W), got {s:?}"
        )));
    }
    check_finite(decoded, "decoded RGBA")?;
    let (h, w) = (s[2], s[3]);
    let hwc = decoded
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .squeeze_dim(0)
        .permute([1, 2, 0])
        .contiguous();
    let raw = Vec::<f32>::try_from(hwc.reshape([-1]))?;
    let (wu, hu) = (w as u32, h as u32);
    let rgb = Rgb32FImage::from_fn(wu, hu, |x, y| {
        let i = ((y * wu + x) * 4) as usize;
        Rgb([raw[i + 1], raw[i + 2], raw[i + 3]])
    });
    let alpha = AlphaF32Image::from_fn(wu, hu, |x, y| Luma([raw[((y * wu + x) * 4) as usize]]));
    let rgb = resize(&rgb, width, height, FilterType::Triangle);
    let alpha = resize(&alpha, width, height, FilterType::Triangle);
    let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    Ok(RgbaImage::from_fn(width, height, |x, y| {
        let c = rgb.get_pixel(x, y).0;
        image::Rgba([q(c[0]), q(c[1]), q(c[2]), q(alpha.get_pixel(x, y).0[0])])
    }))
}

/// [`Error::Input`] naming `what` if `t` holds NaN or ±∞.
pub fn check_finite(t: &Tensor, what: &str) -> Result<()> {
    let bad = t.isfinite().logical_not().any().int64_value(&[]) != 0;
    if bad {
        return Err(Error::Input(format!(
            "{what} contains NaN or infinite values"
        )));
    }
    Ok(())
}

/// LayerDiffuse's transparent encoder and decoder.
#[derive(Debug)]
pub struct TransparentVae {
    /// The offset encoder.
    pub encoder: Loaded<LatentTransparencyOffsetEncoder>,
    /// The transparent decoder.
    pub decoder: Loaded<UNet1024>,
    /// Factor `s` of the offset (1 for the released SD-1.5 encoder).
    pub offset_scale: f64,
    /// Whether decoding uses the 8-fold flip/rotation median (LayerDiffuse's default).
    pub augment: bool,
}

impl TransparentVae {
    /// Loads [`ENCODER_FILE`] and [`DECODER_FILE`] from `dir` with the released architectures,
    /// or those of the folder's optional architecture file
    /// ([`super::arch_file::ARCH_FILE`]).
    ///
    /// # Errors
    /// [`Error::Weights`] naming the missing file; a load error listing missing, unexpected or
    /// mis-shaped tensors by name; [`Error::Config`] for an unreadable architecture file.
    pub fn load(dir: &Path, opts: LoadOptions) -> Result<Self> {
        let arch = super::arch_file::TransparentVaeArch::read_or_default(dir)?;
        Self::load_files(
            &dir.join(ENCODER_FILE),
            &dir.join(DECODER_FILE),
            arch.encoder(),
            &arch.decoder(),
            opts,
        )
    }

    /// Loads the given files with the given architectures (tiny ones in tests).
    ///
    /// # Errors
    /// As [`TransparentVae::load`].
    pub fn load_files(
        encoder: &Path,
        decoder: &Path,
        enc_cfg: OffsetEncoderConfig,
        dec_cfg: &TransparentDecoderConfig,
        opts: LoadOptions,
    ) -> Result<Self> {
        let encoder = build(opts, Some(existing(encoder)?), &[], |p| {
            Ok(LatentTransparencyOffsetEncoder::new(p, enc_cfg))
        })?;
        let decoder = build(opts, Some(existing(decoder)?), &[], |p| {
            Ok(UNet1024::new(p, dec_cfg))
        })?;
        Ok(TransparentVae {
            encoder,
            decoder,
            offset_scale: 1.0,
            augment: true,
        })
    }

    /// Random weights with the released architectures (benchmarks).
    ///
    /// # Errors
    /// [`Error::Config`] for an unsupported dtype.
    pub fn random(opts: LoadOptions) -> Result<Self> {
        Ok(TransparentVae {
            encoder: build(opts, None, &[], |p| {
                Ok(LatentTransparencyOffsetEncoder::new(
                    p,
                    OffsetEncoderConfig::SD15,
                ))
            })?,
            decoder: build(opts, None, &[], |p| {
                Ok(UNet1024::new(p, &TransparentDecoderConfig::sd15()))
            })?,
            offset_scale: 1.0,
            augment: true,
        })
    }

    /// The scaled SD latent of an RGBA image: `scaling_factor · (μ + σ·s·offset)`.
    ///
    /// # Errors
    /// [`Error::Input`] if the sizes do not fit the models or the latent is not finite.
    pub fn encode(&self, vae: &AutoencoderKL, image: &RgbaTensor) -> Result<Tensor> {
        let dist = vae.encode(&image.vae_input())?;
        let offset = self.encoder.model.forward(&image.encoder_input())?;
        if offset.size() != dist.mean.size() {
            return Err(Error::Input(format!(
                "transparent offset {:?} and VAE latent {:?} differ in shape (the VAE must \
                 downsample by 8)",
                offset.size(),
                dist.mean.size()
            )));
        }
        let offset = offset.to_kind(dist.mean.kind()) * self.offset_scale;
        let z = dist.sample_with_noise(&offset) * vae.config().scaling_factor;
        check_finite(&z, "transparent VAE latent")?;
        Ok(z)
    }

    /// Scaled latents (N, 4, h, w) → `[α, rgb]` (N, 4, 8h, 8w) in [0, 1], as f32.
    ///
    /// # Errors
    /// [`Error::Input`] if the latent is not finite or its size does not fit the decoder
    /// (8h, 8w multiples of 64).
    pub fn decode(&self, vae: &AutoencoderKL, latents: &Tensor) -> Result<Tensor> {
        check_finite(latents, "latents to decode")?;
        let z = latents / vae.config().scaling_factor;
        let pixel = (vae.decode(&z)? * 0.5 + 0.5).clamp(0.0, 1.0);
        let n = z.size().first().copied().unwrap_or(0);
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n {
            let (p, l) = (pixel.narrow(0, i, 1), z.narrow(0, i, 1));
            let y = if self.augment {
                self.decoder.model.estimate_augmented(&p, &l)?
            } else {
                self.decoder.model.forward(&p, &l)?.clamp(0.0, 1.0)
            };
            out.push(y.to_kind(Kind::Float));
        }
        Ok(Tensor::cat(&out, 0))
    }
}

/// `path` if the file exists, else [`Error::Weights`] naming it.
fn existing(path: &Path) -> Result<&Path> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Weights {
            path: PathBuf::from(path),
            message: "file not found".into(),
        })
    }
}
