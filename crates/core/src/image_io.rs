//! Image decoding and encoding that tolerate what real data sets contain.
//!
//! Decoding guesses the format from the content (not the extension), applies the EXIF
//! orientation, and converts grayscale, 16-bit, palette and CMYK images to 8-bit RGB/RGBA.
//! Every error names the file. Encoding is atomic (see [`crate::atomic`]).
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage, RgbaImage};
use std::io::Cursor;
use std::path::Path;

/// Decodes `bytes` (read from `path`, which is only used in messages) into an oriented image.
///
/// # Errors
/// [`Error::Decode`] for corrupt, truncated or unsupported data; [`Error::Unusable`] for an
/// image with no pixels.
pub fn decode_bytes(bytes: &[u8], path: &Path) -> Result<DynamicImage> {
    let decode_err = |source| Error::Decode {
        path: path.to_path_buf(),
        source,
    };
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
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
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let orientation = decoder.orientation().map_err(decode_err)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    img.apply_orientation(orientation);
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::Unusable {
            path: path.to_path_buf(),
            reason: "image has no pixels".into(),
        });
    }
    Ok(img)
}

/// Reads and decodes the image at `path`.
///
/// # Errors
/// As [`decode_bytes`], plus [`Error::Io`] if the file cannot be read.
pub fn load(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_bytes(&bytes, path)
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
