//! Golden test: the Rust alpha pyramid against the NumPy + OpenCV reference
//! (`tools/alpha_pyramid_reference.py`, fixtures in `tests/fixtures/alpha_pyramid/`).
use deda_decouple::{pad_rgb, pad_rgb_f32, AlphaF32Image};
use image::{GrayImage, Luma, Rgb32FImage, RgbImage, RgbaImage};
use std::path::PathBuf;

const CASES: [&str; 3] = ["hole_37x23", "hole_rim_64x48", "partial_29x29"];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/alpha_pyramid")
        .join(name)
}

fn load_case(case: &str) -> (RgbaImage, Vec<f32>) {
    let png = fixture(&format!("{case}.png"));
    let input = image::open(&png)
        .unwrap_or_else(|e| {
            panic!(
                "missing fixture {}: {e}; run tools/alpha_pyramid_reference.py",
                png.display()
            )
        })
        .into_rgba8();
    let raw = fixture(&format!("{case}.f32"));
    let bytes = std::fs::read(&raw).unwrap_or_else(|e| {
        panic!(
            "missing fixture {}: {e}; run tools/alpha_pyramid_reference.py",
            raw.display()
        )
    });
    let expected: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(
        expected.len(),
        (input.width() * input.height() * 3) as usize,
        "{case}: size"
    );
    (input, expected)
}

fn split_f32(rgba: &RgbaImage) -> (Rgb32FImage, AlphaF32Image) {
    let f = |v: u8| f32::from(v) / 255.0;
    let rgb = Rgb32FImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        image::Rgb([f(p[0]), f(p[1]), f(p[2])])
    });
    let a = AlphaF32Image::from_fn(rgba.width(), rgba.height(), |x, y| {
        Luma([f(rgba.get_pixel(x, y).0[3])])
    });
    (rgb, a)
}

#[test]
fn float_output_matches_the_opencv_reference() {
    // 4x the reference's own float32-vs-float64 spread (recorded by the script).
    let tol = deda_parity::fixture_tolerance(&fixture("spread.json"));
    let mut worst = 0.0f64;
    for case in CASES {
        let (input, expected) = load_case(case);
        let (rgb, a) = split_f32(&input);
        let out = pad_rgb_f32(&rgb, &a).unwrap();
        let shape = [out.height() as usize, out.width() as usize, 3];
        let report = deda_parity::assert_close(case, out.as_raw(), &expected, &shape, tol);
        worst = worst.max(report.max_abs);
    }
    println!("alpha pyramid golden: worst max abs error {worst:e}");
}

#[test]
fn opaque_pixels_are_kept_exactly() {
    for case in CASES {
        let (input, _) = load_case(case);
        let rgb = RgbImage::from_fn(input.width(), input.height(), |x, y| {
            let p = input.get_pixel(x, y).0;
            image::Rgb([p[0], p[1], p[2]])
        });
        let alpha = GrayImage::from_fn(input.width(), input.height(), |x, y| {
            Luma([input.get_pixel(x, y).0[3]])
        });
        let out = pad_rgb(&rgb, &alpha).unwrap();
        let (rgb_f, a_f) = split_f32(&input);
        let out_f = pad_rgb_f32(&rgb_f, &a_f).unwrap();
        for (x, y, a) in alpha.enumerate_pixels() {
            if a.0[0] == 255 {
                assert_eq!(
                    out.get_pixel(x, y),
                    rgb.get_pixel(x, y),
                    "{case} u8 at ({x}, {y})"
                );
                assert_eq!(
                    out_f.get_pixel(x, y),
                    rgb_f.get_pixel(x, y),
                    "{case} f32 at ({x}, {y})"
                );
            }
        }
    }
}
