//! Strict and bounded decoding: truncated images of every supported format are refused with
//! the file named, complete JPEGs with trailing bytes still load, and an image larger than the
//! decode limits is refused from its header, before any pixel buffer is allocated.
use deda_core::image_io::{check_jpeg_complete, decode_bytes, decode_bytes_with, DecodeLimits};
use deda_core::Error;
use image::{DynamicImage, ImageFormat, RgbImage};
use std::io::Cursor;
use std::path::Path;

/// A textured image (so that compressed formats do not collapse to a few bytes).
fn textured(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503);
        image::Rgb([(v >> 3) as u8, (x * 3 + y) as u8, (v >> 11) as u8])
    })
}

fn encoded(format: ImageFormat) -> Vec<u8> {
    let img = DynamicImage::ImageRgb8(textured(96, 64));
    let img = if format == ImageFormat::Gif {
        DynamicImage::ImageRgba8(img.to_rgba8())
    } else {
        img
    };
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

const FORMATS: [(ImageFormat, &str); 6] = [
    (ImageFormat::Jpeg, "jpg"),
    (ImageFormat::Png, "png"),
    (ImageFormat::Bmp, "bmp"),
    (ImageFormat::WebP, "webp"),
    (ImageFormat::Gif, "gif"),
    (ImageFormat::Tiff, "tif"),
];

#[test]
fn every_format_decodes_whole_and_is_refused_truncated() {
    for (format, ext) in FORMATS {
        let bytes = encoded(format);
        let name = format!("birds/cut.{ext}");
        decode_bytes(&bytes, Path::new(&name)).unwrap_or_else(|e| panic!("{format:?} whole: {e}"));
        for percent in [50, 90, 99] {
            let cut = &bytes[..bytes.len() * percent / 100];
            let err = decode_bytes(cut, Path::new(&name))
                .err()
                .unwrap_or_else(|| panic!("{format:?} truncated at {percent}% decoded"));
            assert!(err.to_string().contains(&name), "{format:?}: {err}");
        }
    }
}

#[test]
fn truncated_jpeg_is_a_truncation_error() {
    let bytes = encoded(ImageFormat::Jpeg);
    for percent in [50, 90] {
        let cut = &bytes[..bytes.len() * percent / 100];
        let err = decode_bytes(cut, Path::new("a/b.jpg")).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "{percent}%: {err}");
        assert!(err.to_string().contains("a/b.jpg"), "{err}");
    }
    // the last byte missing is enough
    let err = decode_bytes(&bytes[..bytes.len() - 1], Path::new("c.jpg")).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

#[test]
fn jpeg_with_trailing_garbage_after_eoi_still_loads() {
    let mut bytes = encoded(ImageFormat::Jpeg);
    let clean = decode_bytes(&bytes, Path::new("x.jpg"))
        .unwrap()
        .into_rgb8();
    bytes.extend_from_slice(b"\x00\x01garbage after the end\xFF\xD8\xFF");
    let with_tail = decode_bytes(&bytes, Path::new("x.jpg"))
        .unwrap()
        .into_rgb8();
    assert_eq!(clean, with_tail);
}

#[test]
fn jpeg_structure_walk_skips_thumbnails_and_restart_markers() {
    // an APP1 segment holding a complete JPEG (a thumbnail with its own EOI) must not end the
    // walk: truncating after the thumbnail is still refused
    let main = encoded(ImageFormat::Jpeg);
    let thumb = encoded(ImageFormat::Jpeg);
    let mut with_thumb = vec![0xFF, 0xD8, 0xFF, 0xE1];
    with_thumb.extend_from_slice(&((thumb.len() + 2) as u16).to_be_bytes());
    with_thumb.extend_from_slice(&thumb);
    with_thumb.extend_from_slice(&main[2..]);
    assert_eq!(check_jpeg_complete(&with_thumb), Ok(()));
    decode_bytes(&with_thumb, Path::new("t.jpg")).unwrap();
    let cut = &with_thumb[..thumb.len() + 6 + (main.len() - 2) / 2];
    assert!(check_jpeg_complete(cut).is_err());
    // restart markers and stuffed bytes inside the scan data are not the end
    let scan = [
        0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF, 0xD9,
    ];
    assert_eq!(check_jpeg_complete(&scan), Ok(()));
    assert!(check_jpeg_complete(&scan[..scan.len() - 2]).is_err());
}

/// A 1×1 grayscale PNG whose header is patched to claim `w × h` pixels (a few hundred bytes).
fn huge_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageLuma8(image::GrayImage::new(1, 1))
        .write_to(&mut out, ImageFormat::Png)
        .unwrap();
    let mut bytes = out.into_inner();
    // signature (8) + length (4) + "IHDR" (4) + width + height ...; CRC over type + data (17)
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn image_beyond_the_pixel_limit_is_refused_from_its_header() {
    let bytes = huge_png(20_000, 20_000);
    assert!(bytes.len() < 1000, "{}", bytes.len());
    let err = decode_bytes(&bytes, Path::new("big/huge.png")).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("big/huge.png") && msg.contains("20000x20000"),
        "{msg}"
    );
}

#[test]
fn limits_are_configurable() {
    let bytes = encoded(ImageFormat::Png);
    let tight = DecodeLimits {
        max_pixels: 96 * 64 - 1,
        ..DecodeLimits::default()
    };
    let err = decode_bytes_with(&bytes, Path::new("p.png"), &tight).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let exact = DecodeLimits {
        max_pixels: 96 * 64,
        ..DecodeLimits::default()
    };
    decode_bytes_with(&bytes, Path::new("p.png"), &exact).unwrap();
    let tiny_alloc = DecodeLimits {
        max_alloc: 1000,
        ..DecodeLimits::default()
    };
    let err = decode_bytes_with(&bytes, Path::new("p.png"), &tiny_alloc).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}
