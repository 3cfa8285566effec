//! Bad and unusual image files: each decodes correctly or fails with an error naming the file.
use deda_core::image_io::{decode_bytes, encode_png, load_rgb, load_rgba};
use deda_core::Error;
use image::{DynamicImage, GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use std::path::Path;

fn png_bytes(img: DynamicImage) -> Vec<u8> {
    encode_png(&img, Path::new("mem.png")).unwrap()
}

#[test]
fn truncated_png_is_a_decode_error_naming_the_file() {
    let img = RgbImage::from_fn(32, 32, |x, y| Rgb([x as u8, y as u8, 7]));
    let bytes = png_bytes(DynamicImage::ImageRgb8(img));
    let cut = &bytes[..bytes.len() / 2];
    let err = decode_bytes(cut, Path::new("birds/cut.png")).unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(err.to_string().contains("birds/cut.png"), "{err}");
}

#[test]
fn garbage_bytes_are_a_decode_error() {
    let err = decode_bytes(b"this is not an image at all", Path::new("x.jpg")).unwrap_err();
    assert!(err.to_string().contains("x.jpg"), "{err}");
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = load_rgb(Path::new("/nonexistent/deda/file.png")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/deda/file.png"));
}

#[test]
fn grayscale_and_16_bit_become_rgb8() {
    let g = GrayImage::from_fn(5, 4, |x, _| Luma([x as u8 * 50]));
    let rgb = decode_bytes(&png_bytes(DynamicImage::ImageLuma8(g)), Path::new("g.png"))
        .unwrap()
        .into_rgb8();
    assert_eq!(rgb.get_pixel(2, 1), &Rgb([100, 100, 100]));

    let deep: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(3, 3, |_, _| Rgb([65535, 0, 32896]));
    let rgb = decode_bytes(
        &png_bytes(DynamicImage::ImageRgb16(deep)),
        Path::new("d.png"),
    )
    .unwrap()
    .into_rgb8();
    assert_eq!(rgb.get_pixel(0, 0), &Rgb([255, 0, 128]));
}

#[test]
fn rgba_round_trips_through_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.png");
    let img = RgbaImage::from_fn(6, 5, |x, y| Rgba([x as u8, y as u8, 9, (x * 40) as u8]));
    deda_core::image_io::save_png(&DynamicImage::ImageRgba8(img.clone()), &p).unwrap();
    assert_eq!(load_rgba(&p).unwrap(), img);
}

#[test]
fn exif_orientation_is_applied() {
    // A 2x1 JPEG with EXIF orientation 6 (rotate 90° clockwise) must come out 1x2.
    let img = RgbImage::from_fn(16, 8, |x, _| {
        if x < 8 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let mut jpeg = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95);
    use image::ImageEncoder;
    // Minimal EXIF (big endian TIFF) with one IFD entry: Orientation (0x0112) = 6.
    let exif: Vec<u8> = vec![
        b'M', b'M', 0, 42, 0, 0, 0, 8, // header, IFD at 8
        0, 1, // one entry
        0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, // orientation SHORT 1 = 6
        0, 0, 0, 0, // next IFD
    ];
    enc.set_exif_metadata(exif).unwrap();
    enc.write_image(img.as_raw(), 16, 8, image::ExtendedColorType::Rgb8)
        .unwrap();
    let out = decode_bytes(&jpeg, Path::new("rot.jpg"))
        .unwrap()
        .into_rgb8();
    assert_eq!((out.width(), out.height()), (8, 16));
    // After a clockwise turn the left (red) half is on top.
    assert!(out.get_pixel(4, 2)[0] > 200, "{:?}", out.get_pixel(4, 2));
    assert!(out.get_pixel(4, 13)[2] > 200, "{:?}", out.get_pixel(4, 13));
}

#[test]
fn palette_png_is_expanded() {
    // Build an indexed PNG by hand with the png encoder in the image crate's dependency.
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, 2, 1);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![255, 0, 0, 0, 255, 0]);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[0, 1]).unwrap();
    }
    let rgb = decode_bytes(&bytes, Path::new("pal.png"))
        .unwrap()
        .into_rgb8();
    assert_eq!(rgb.get_pixel(0, 0), &Rgb([255, 0, 0]));
    assert_eq!(rgb.get_pixel(1, 0), &Rgb([0, 255, 0]));
}
