//! Image decoding and encoding that tolerate what real data sets contain.
//!
//! Decoding guesses the format from the content (not the extension), applies the EXIF
//! orientation, and converts grayscale, 16-bit, palette and CMYK images to 8-bit RGB/RGBA.
//! Every error names the file. Encoding is atomic (see [`crate::atomic`]).
//!
//! Decoding is bounded and strict:
//! - [`DecodeLimits`] caps the pixel count and the decoder's allocations *before* the pixels
//!   are decoded, so a small file that claims a huge size is an [`Error::TooLarge`], never an
//!   aborted process;
//! - a JPEG must be complete: its marker structure is walked up to the end-of-image marker,
//!   so a truncated file (which the decoder would silently pad with gray) is an
//!   [`Error::Truncated`]; bytes after the end-of-image marker are ignored, as decoders do.
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage, RgbaImage};
use std::io::Cursor;
use std::path::Path;

/// Default cap on the pixels of a decoded image: 2^27 (128 Mpx, e.g. 16384 × 8192; a
/// 12000 × 9000 photo is 108 Mpx). Its RGB pixels take 384 MiB.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 27;
/// Default cap on the decoder's allocations, output buffer included: 1 GiB.
pub const DEFAULT_MAX_ALLOC: u64 = 1 << 30;

/// Bounds on what a decoder may produce, checked from the header before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted `width × height`.
    pub max_pixels: u64,
    /// Largest total allocation of the decoder in bytes (the `image` crate's `max_alloc`).
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_pixels: DEFAULT_MAX_PIXELS,
            max_alloc: DEFAULT_MAX_ALLOC,
        }
    }
}

/// Decodes `bytes` (read from `path`, which is only used in messages) into an oriented image,
/// within the default [`DecodeLimits`].
///
/// # Errors
/// [`Error::Decode`] for corrupt or unsupported data; [`Error::Truncated`] for an incomplete
/// JPEG; [`Error::TooLarge`] beyond the limits; [`Error::Unusable`] for an image with no
/// pixels.
pub fn decode_bytes(bytes: &[u8], path: &Path) -> Result<DynamicImage> {
    decode_bytes_with(bytes, path, &DecodeLimits::default())
}

/// [`decode_bytes`] with explicit limits.
///
/// # Errors
/// As [`decode_bytes`].
pub fn decode_bytes_with(bytes: &[u8], path: &Path, limits: &DecodeLimits) -> Result<DynamicImage> {
    let decode_err = |source| Error::Decode {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let mut image_limits = Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(image_limits);
    if reader.format().is_none() {
        return Err(Error::Decode {
            path: path.to_path_buf(),
            source: image::ImageError::Unsupported(
                image::error::UnsupportedError::from_format_and_kind(
                    image::error::ImageFormatHint::Unknown,
                    image::error::UnsupportedErrorKind::Format(
                        image::error::ImageFormatHint::Unknown,
                    ),
                ),
            ),
        });
    }
    if reader.format() == Some(ImageFormat::Jpeg) {
        check_jpeg_complete(bytes).map_err(|reason| Error::Truncated {
            path: path.to_path_buf(),
            reason,
        })?;
    }
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => too_large(path, None, limits),
        e => decode_err(e),
    })?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels
        || decoder.total_bytes() > limits.max_alloc
    {
        return Err(too_large(path, Some((width, height)), limits));
    }
    let orientation = decoder.orientation().map_err(decode_err)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => too_large(path, Some((width, height)), limits),
        e => decode_err(e),
    })?;
    img.apply_orientation(orientation);
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::Unusable {
            path: path.to_path_buf(),
            reason: "image has no pixels".into(),
        });
    }
    Ok(img)
}

fn too_large(path: &Path, size: Option<(u32, u32)>, limits: &DecodeLimits) -> Error {
    Error::TooLarge {
        path: path.to_path_buf(),
        size: size.map_or_else(
            || "its decoder".to_string(),
            |(w, h)| format!("{w}x{h} ({} px)", u64::from(w) * u64::from(h)),
        ),
        max_pixels: limits.max_pixels,
        max_alloc: limits.max_alloc,
    }
}

/// Checks that a JPEG's marker structure runs from SOI to EOI: marker segments are skipped by
/// their length, entropy-coded data up to the next marker that is not a restart marker or a
/// stuffed `FF 00`. Returns why the file is incomplete (anything after EOI is ignored).
pub fn check_jpeg_complete(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err("no start-of-image marker".into());
    }
    let mut i = 2;
    let mut in_scan = false;
    loop {
        if in_scan {
            // entropy-coded data: find the next FF xx with xx not 00 and not RST0..7
            loop {
                let next_ff = bytes
                    .get(i..)
                    .and_then(|rest| rest.iter().position(|&b| b == 0xFF));
                let Some(offset) = next_ff else {
                    return Err(format!(
                        "file ends inside the image data at byte {} (no end-of-image marker)",
                        bytes.len()
                    ));
                };
                i += offset;
                match bytes.get(i + 1) {
                    None | Some(0x00) | Some(0xD0..=0xD7) | Some(0xFF) => i += 1,
                    Some(_) => break,
                }
            }
            in_scan = false;
        }
        // at a marker: skip fill bytes
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(i), bytes.get(i + 1)) else {
            return Err(format!(
                "file ends or breaks at byte {i} of {} before the end-of-image marker",
                bytes.len()
            ));
        };
        i += 2;
        match marker {
            0xD9 => return Ok(()),
            0xD0..=0xD7 | 0x01 => continue,
            0xD8 => return Err(format!("second start-of-image marker at byte {}", i - 2)),
            _ => {
                let (Some(&hi), Some(&lo)) = (bytes.get(i), bytes.get(i + 1)) else {
                    return Err(format!(
                        "file ends inside the header of marker FF{marker:02X} at byte {}",
                        i - 2
                    ));
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if len < 2 || i + len > bytes.len() {
                    return Err(format!(
                        "segment FF{marker:02X} at byte {} runs past the end of the file",
                        i - 2
                    ));
                }
                i += len;
                in_scan = marker == 0xDA;
            }
        }
    }
}

/// Reads and decodes the image at `path`, within the default [`DecodeLimits`].
///
/// # Errors
/// As [`decode_bytes`], plus [`Error::Io`] if the file cannot be read.
pub fn load(path: &Path) -> Result<DynamicImage> {
    load_with(path, &DecodeLimits::default())
}

/// [`load`] with explicit limits.
///
/// # Errors
/// As [`load`].
pub fn load_with(path: &Path, limits: &DecodeLimits) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_bytes_with(&bytes, path, limits)
}

/// [`load_rgb`] with explicit limits.
///
/// # Errors
/// As [`load`].
pub fn load_rgb_with(path: &Path, limits: &DecodeLimits) -> Result<RgbImage> {
    Ok(load_with(path, limits)?.into_rgb8())
}

/// Loads `path` as 8-bit RGB (alpha, if any, is dropped).
///
/// # Errors
/// As [`load`].
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    Ok(load(path)?.into_rgb8())
}

/// Loads `path` as 8-bit RGBA (opaque alpha if the file has none).
///
/// # Errors
/// As [`load`].
pub fn load_rgba(path: &Path) -> Result<RgbaImage> {
    Ok(load(path)?.into_rgba8())
}

/// Encodes `img` as PNG into memory.
///
/// # Errors
/// [`Error::Encode`] naming `path_for_messages`.
pub fn encode_png(img: &DynamicImage, path_for_messages: &Path) -> Result<Vec<u8>> {
    encode(img, ImageFormat::Png, path_for_messages)
}

/// Encodes `img` as JPEG with the given quality (1–100) into memory.
///
/// # Errors
/// [`Error::Encode`] naming `path_for_messages`.
pub fn encode_jpeg(img: &RgbImage, quality: u8, path_for_messages: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
    img.write_with_encoder(enc)
        .map_err(|source| Error::Encode {
            path: path_for_messages.to_path_buf(),
            source,
        })?;
    Ok(out)
}

fn encode(img: &DynamicImage, format: ImageFormat, path: &Path) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format)
        .map_err(|source| Error::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out.into_inner())
}

/// Saves `img` as PNG at `path`, atomically.
///
/// # Errors
/// [`Error::Encode`] or [`Error::Io`] naming `path`.
pub fn save_png(img: &DynamicImage, path: &Path) -> Result<()> {
    write_atomic(path, &encode_png(img, path)?)
}

/// Saves `img` as JPEG at `path`, atomically.
///
/// # Errors
/// [`Error::Encode`] or [`Error::Io`] naming `path`.
pub fn save_jpeg(img: &RgbImage, quality: u8, path: &Path) -> Result<()> {
    write_atomic(path, &encode_jpeg(img, quality, path)?)
}
