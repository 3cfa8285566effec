//! Saliency maps of a batch, as the GuidedMixup code base computes them (`Utils/spectral_residual.py`,
//! `Implementor/guidedmixup.py`), on tch tensors so they run on the batch's device.
//!
//! - [`spectral_residual`] (Guided-SR, SaliencyMix here): grayscale → (if H > 128) antialiased
//!   bilinear resize to 128 × 128 → FFT → amplitude `|F| = √(re² + im² + 1e-10)` → residual
//!   `exp(log|F| − box3(log|F|))` (3 × 3 mean, replicate padding) → `F·residual/|F|` → inverse FFT
//!   → magnitude → Gaussian blur (7, σ 3) → resize back to H × W.
//! - [`gradient_saliency`] (Guided-AP): `√(mean_c (∂L/∂x)²)` of the current model's loss on the
//!   batch, from an extra forward/backward in training mode; only the input's gradient is
//!   computed, the parameters' `.grad` are left untouched. The loss is the run's
//!   ([`gradient_saliency_for`]: BCE with logits on multi-hot targets under the multi-label
//!   loss, the soft-label cross-entropy otherwise).
//! - [`gaussian_blur`]: torchvision's `GaussianBlur` on tensors (kernel `exp(−x²/2σ²)` on
//!   `linspace(−(k−1)/2, (k−1)/2, k)`, normalised; reflect padding; one 2-D kernel per channel).
//!
//! The reference runs on ImageNet-normalised tensors, and so do these functions.
use deda_nets::Model;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::optim::loss::smoothed_cross_entropy;
use crate::optim::multi_label::{binary_cross_entropy_with_logits, LossKind};

/// The side the reference downsamples larger images to before the FFT.
pub const SR_SIZE: i64 = 128;
/// Gaussian blur kernel size of the reference (`--blur`, `--saliency_blur`).
pub const BLUR_KERNEL: i64 = 7;
/// Gaussian blur σ of the reference (`--blur_sigma`, `--saliency_blur_sigma`).
pub const BLUR_SIGMA: f64 = 3.0;
/// The ε under the square root of the amplitude.
const AMPLITUDE_EPS: f64 = 1e-10;

fn check_images(images: &Tensor, what: &str) -> Result<(i64, i64, i64)> {
    match images.size()[..] {
        [n, 3, h, w] if n > 0 && h > 0 && w > 0 => Ok((n, h, w)),
        ref s => Err(Error::Shape {
            what: what.into(),
            detail: format!("expected N×3×H×W images, got {s:?}"),
        }),
    }
}

/// The normalised 1-D Gaussian kernel of torchvision's `_get_gaussian_kernel1d`.
fn gaussian_kernel1d(ksize: i64, sigma: f64) -> Vec<f32> {
    let half = (ksize - 1) as f64 * 0.5;
    let step = if ksize > 1 {
        2.0 * half / (ksize - 1) as f64
    } else {
        0.0
    };
    let pdf: Vec<f32> = (0..ksize)
        .map(|i| {
            let x = (-half + step * i as f64) as f32;
            (-0.5 * (x / sigma as f32).powi(2)).exp()
        })
        .collect();
    let sum: f32 = pdf.iter().sum();
    pdf.iter().map(|p| p / sum).collect()
}

/// torchvision `GaussianBlur((k, k), σ)` applied to every map of `maps` (N × H × W).
pub fn gaussian_blur(maps: &Tensor, ksize: i64, sigma: f64) -> Result<Tensor> {
    let size = maps.size();
    if size.len() != 3 || ksize < 1 || ksize % 2 == 0 || sigma.is_nan() || sigma <= 0.0 {
        return Err(Error::Shape {
            what: "gaussian blur".into(),
            detail: format!("maps {size:?} (N×H×W), kernel {ksize} (odd), sigma {sigma} (> 0)"),
        });
    }
    let pad = ksize / 2;
    if size[1] <= pad || size[2] <= pad {
        return Err(Error::Shape {
            what: "gaussian blur".into(),
            detail: format!("maps {size:?} are too small for reflect padding {pad}"),
        });
    }
    let k1 = Tensor::from_slice(&gaussian_kernel1d(ksize, sigma)).to_device(maps.device());
    let k2 = k1.view([ksize, 1]).matmul(&k1.view([1, ksize]));
    let x = maps
        .to_kind(Kind::Float)
        .unsqueeze(1)
        .f_pad([pad, pad, pad, pad], "reflect", None)
        .map_err(Error::tch("gaussian blur padding"))?;
    let y = x
        .f_conv2d(
            &k2.view([1, 1, ksize, ksize]),
            None::<Tensor>,
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        )
        .map_err(Error::tch("gaussian blur"))?;
    Ok(y.squeeze_dim(1))
}

/// torchvision `rgb_to_grayscale` (ITU-R 601-2 luma) of N × 3 × H × W images → N × 1 × H × W.
fn grayscale(images: &Tensor) -> Tensor {
    let c = |i: i64| images.select(1, i);
    (c(0) * 0.2989 + c(1) * 0.587 + c(2) * 0.114).unsqueeze(1)
}

/// Antialiased bilinear resize (torchvision `Resize` on tensors) of N × C × H × W to `h × w`.
fn resize(x: &Tensor, h: i64, w: i64) -> Result<Tensor> {
    x.f_internal_upsample_bilinear2d_aa([h, w], false, None, None)
        .map_err(Error::tch("saliency resize"))
}

/// The 3 × 3 mean of N × 1 × H × W with replicate padding (the reference's `boxfilter`).
fn box3(x: &Tensor) -> Result<Tensor> {
    let k = Tensor::full([1, 1, 3, 3], 1.0 / 9.0, (Kind::Float, x.device()));
    x.f_pad([1, 1, 1, 1], "replicate", None)
        .and_then(|p| p.f_conv2d(&k, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1))
        .map_err(Error::tch("spectral residual box filter"))
}

/// Spectral-residual saliency (N × H × W, non-negative) of N × 3 × H × W images; see the module
/// docs for the steps.
pub fn spectral_residual(images: &Tensor) -> Result<Tensor> {
    let (_, h, w) = check_images(images, "spectral residual")?;
    tch::no_grad(|| {
        let mut gray = grayscale(&images.to_kind(Kind::Float));
        let downsample = h > SR_SIZE;
        if downsample {
            gray = resize(&gray, SR_SIZE, SR_SIZE)?;
        }
        let freq = gray
            .f_fft_fft2(None::<&[i64]>, [-2, -1], "backward")
            .map_err(Error::tch("spectral residual fft"))?;
        let (re, im) = (freq.real(), freq.imag());
        let mag = (&re * &re + &im * &im + AMPLITUDE_EPS).sqrt();
        let log_mag = mag.log();
        let residual = (&log_mag - box3(&log_mag)?).exp();
        let scaled = freq * (residual / mag);
        let back = scaled
            .f_fft_ifft2(None::<&[i64]>, [-2, -1], "backward")
            .map_err(Error::tch("spectral residual inverse fft"))?;
        let (br, bi) = (back.real(), back.imag());
        let amplitude = (&br * &br + &bi * &bi).sqrt().squeeze_dim(1);
        let mut sal = gaussian_blur(&amplitude, BLUR_KERNEL, BLUR_SIGMA)?;
        if downsample {
            sal = resize(&sal.unsqueeze(1), h, w)?.squeeze_dim(1);
        }
        Ok(sal)
    })
}

/// The loss a saliency is the input gradient of: the run's training loss, binary
/// cross-entropy with logits for [`LossKind::Bce`] (multi-label sets, multi-hot targets),
/// else the soft-label cross-entropy with uniform smoothing `label_smoothing`.
pub fn saliency_loss(
    logits: &Tensor,
    targets: &Tensor,
    loss: LossKind,
    label_smoothing: f64,
) -> Result<Tensor> {
    match loss {
        LossKind::Bce => binary_cross_entropy_with_logits(logits, targets),
        LossKind::CrossEntropy | LossKind::Auto => {
            smoothed_cross_entropy(logits, targets, label_smoothing)
        }
    }
}

/// Absolute-gradient saliency `√(mean_c (∂L/∂x)²)` (N × H × W) of the model's soft-label loss
/// on `images` (N × 3 × H × W) and `targets` (N × C).
///
/// The forward runs in training mode, as in the reference (batch-norm running statistics see
/// the clean batch once more); the backward computes only the input's gradient.
pub fn gradient_saliency(
    model: &dyn Model,
    images: &Tensor,
    targets: &Tensor,
    label_smoothing: f64,
) -> Result<Tensor> {
    gradient_saliency_for(
        model,
        images,
        targets,
        LossKind::CrossEntropy,
        label_smoothing,
    )
}

/// [`gradient_saliency`] of the run's `loss` ([`saliency_loss`]: BCE with logits under the
/// multi-label loss).
pub fn gradient_saliency_for(
    model: &dyn Model,
    images: &Tensor,
    targets: &Tensor,
    loss: LossKind,
    label_smoothing: f64,
) -> Result<Tensor> {
    check_images(images, "gradient saliency")?;
    let x = images.detach().set_requires_grad(true);
    let logits = model.forward_t(&x, true);
    let loss = saliency_loss(&logits, targets, loss, label_smoothing)?;
    let grads = Tensor::f_run_backward(&[&loss], &[&x], false, false)
        .map_err(Error::tch("gradient saliency backward"))?;
    let g = grads.into_iter().next().ok_or_else(|| Error::Shape {
        what: "gradient saliency".into(),
        detail: "autograd returned no gradient for the images".into(),
    })?;
    Ok(tch::no_grad(|| {
        (&g * &g).mean_dim(1, false, Kind::Float).sqrt()
    }))
}

/// [`gradient_saliency_for`] that also returns the clean batch's loss (the run's `loss`) with
/// its graph kept, for a step that adds it to its update (Co-Mixup's `clean_lam`).
/// `train_mode` picks the forward's mode (the reference runs it in evaluation mode when the
/// loss is not used).
pub fn gradient_saliency_with_loss(
    model: &dyn Model,
    images: &Tensor,
    targets: &Tensor,
    loss: LossKind,
    label_smoothing: f64,
    train_mode: bool,
) -> Result<(Tensor, Tensor)> {
    check_images(images, "gradient saliency")?;
    let x = images.detach().set_requires_grad(true);
    let logits = model.forward_t(&x, train_mode);
    let loss = saliency_loss(&logits, targets, loss, label_smoothing)?;
    let grads = Tensor::f_run_backward(&[&loss], &[&x], true, false)
        .map_err(Error::tch("gradient saliency backward"))?;
    let g = grads.into_iter().next().ok_or_else(|| Error::Shape {
        what: "gradient saliency".into(),
        detail: "autograd returned no gradient for the images".into(),
    })?;
    let sal = tch::no_grad(|| (&g * &g).mean_dim(1, false, Kind::Float).sqrt());
    Ok((sal, loss))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn gaussian_kernel_matches_torchvision_values() {
        let k = gaussian_kernel1d(7, 3.0);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        // exp(-0.5·(3/3)²) / Σ: torchvision gives 0.1063 for the outer taps.
        assert!((k[0] - 0.106_288_34).abs() < 1e-6, "{k:?}");
        assert!((k[3] - 0.175_240_08).abs() < 1e-6, "{k:?}");
    }

    #[test]
    fn blur_keeps_constants_and_rejects_bad_shapes() {
        let x = Tensor::full([2, 9, 11], 0.25, (Kind::Float, Device::Cpu));
        let y = gaussian_blur(&x, 7, 3.0).unwrap();
        assert_eq!(y.size(), vec![2, 9, 11]);
        assert!((y - 0.25).abs().max().double_value(&[]) < 1e-6);
        assert!(gaussian_blur(&x.unsqueeze(0), 7, 3.0).is_err());
        assert!(gaussian_blur(&x, 6, 3.0).is_err());
    }

    #[test]
    fn spectral_residual_is_positive_and_keeps_the_size() {
        let x = Tensor::randn([2, 3, 20, 24], (Kind::Float, Device::Cpu));
        let s = spectral_residual(&x).unwrap();
        assert_eq!(s.size(), vec![2, 20, 24]);
        assert!(s.min().double_value(&[]) > 0.0);
        assert!(spectral_residual(&x.select(1, 0)).is_err());
    }
}
