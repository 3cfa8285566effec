//! Decoupling a real photo: a duck cut-out (known alpha) pasted on a water background.
//!
//! Inputs from `testdata/assets` (one resolver: `testdata/locate.rs`).
//! Writes a before/after strip for a human to `target/decouple-preview/duck_on_aqua.png`.
use deda_decouple::dilate::dilate;
use deda_decouple::{decouple_image, DecoupleOptions, Outcome};
use image::{GenericImage, GenericImageView, GrayImage, Luma, Rgb, RgbImage, RgbaImage};
use std::path::PathBuf;

const CANVAS: (u32, u32) = (320, 240);
const BG_ORIGIN: (u32, u32) = (600, 380);
const PASTE_AT: (u32, u32) = (70, 40);
/// Width of the ring around the grown hole whose colour the fill should continue.
const RING: u32 = 8;

#[path = "../../../testdata/locate.rs"]
mod locate;

fn load_asset(rel: &str) -> image::DynamicImage {
    let path = locate::require(rel);
    image::open(&path).unwrap_or_else(|e| panic!("test asset {}: {e}", path.display()))
}

/// The composite photo and the pasted alpha as a full-size mask.
fn paste_duck() -> (RgbImage, GrayImage) {
    let duck: RgbaImage = load_asset("assets/cutouts/bird/duck.png").into_rgba8();
    let bg = load_asset("assets/backgrounds/aqua.jpg").into_rgb8();
    let mut img = bg
        .view(BG_ORIGIN.0, BG_ORIGIN.1, CANVAS.0, CANVAS.1)
        .to_image();
    let mut mask = GrayImage::new(CANVAS.0, CANVAS.1);
    for (x, y, p) in duck.enumerate_pixels() {
        let (cx, cy) = (PASTE_AT.0 + x, PASTE_AT.1 + y);
        let a = f32::from(p.0[3]) / 255.0;
        let under = img.get_pixel(cx, cy).0;
        let over =
            |c: usize| (f32::from(p.0[c]) * a + f32::from(under[c]) * (1.0 - a)).round() as u8;
        img.put_pixel(cx, cy, Rgb([over(0), over(1), over(2)]));
        mask.put_pixel(cx, cy, Luma([p.0[3]]));
    }
    (img, mask)
}

fn mean_colour(img: &RgbImage, select: impl Fn(u32, u32) -> bool) -> [f64; 3] {
    let (mut sum, mut n) = ([0.0f64; 3], 0u64);
    for (x, y, p) in img.enumerate_pixels() {
        if select(x, y) {
            for (s, v) in sum.iter_mut().zip(p.0) {
                *s += f64::from(v);
            }
            n += 1;
        }
    }
    assert!(n > 0, "empty selection");
    sum.map(|s| s / n as f64)
}

fn max_channel_gap(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|c| (a[c] - b[c]).abs()).fold(0.0, f64::max)
}

fn save_preview(img: &RgbImage, mask: &GrayImage, cip: &RgbImage) -> PathBuf {
    let (w, h) = img.dimensions();
    let mut strip = RgbImage::new(3 * w, h);
    strip.copy_from(img, 0, 0).unwrap();
    let mask_rgb = RgbImage::from_fn(w, h, |x, y| {
        let v = mask.get_pixel(x, y).0[0];
        Rgb([v, v, v])
    });
    strip.copy_from(&mask_rgb, w, 0).unwrap();
    strip.copy_from(cip, 2 * w, 0).unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/decouple-preview");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("duck_on_aqua.png");
    strip.save(&path).unwrap();
    path
}

#[test]
fn duck_on_water_decouples_into_its_alpha_and_a_hole_free_background() {
    let (img, mask) = paste_duck();
    let opts = DecoupleOptions::default();
    let Outcome::Decoupled(d) = decouple_image(&img, &mask, &opts).unwrap() else {
        panic!("the duck was not found")
    };
    // CDP: the box of the pasted alpha, carrying exactly that alpha and the photo's colours.
    let b = d.bbox;
    for (x, y, p) in d.cdp.enumerate_pixels() {
        assert_eq!(
            p.0[3],
            mask.get_pixel(b.x + x, b.y + y).0[0],
            "CDP alpha at ({x}, {y})"
        );
        assert_eq!(
            p.0[..3],
            img.get_pixel(b.x + x, b.y + y).0,
            "CDP colour at ({x}, {y})"
        );
    }
    assert!(b.x >= PASTE_AT.0 && b.y >= PASTE_AT.1, "{b:?}");

    // CIP: untouched outside the grown hole.
    let r = opts.hole_dilation_radius(CANVAS.0, CANVAS.1);
    let grown = dilate(&mask, r);
    for (x, y, p) in d.cip.enumerate_pixels() {
        if grown.get_pixel(x, y).0[0] == 0 {
            assert_eq!(
                p,
                img.get_pixel(x, y),
                "CIP changed outside the hole at ({x}, {y})"
            );
        }
    }

    // No hard hole: the fill continues the colours of the ring around the hole.
    let ring = dilate(&mask, r + RING);
    let in_hole = |x, y| mask.get_pixel(x, y).0[0] > opts.mask_threshold;
    let in_ring = |x, y| grown.get_pixel(x, y).0[0] == 0 && ring.get_pixel(x, y).0[0] > 0;
    let hole_fill = mean_colour(&d.cip, in_hole);
    let ring_colour = mean_colour(&img, in_ring);
    let duck_colour = mean_colour(&img, in_hole);
    let fill_gap = max_channel_gap(hole_fill, ring_colour);
    let duck_gap = max_channel_gap(duck_colour, ring_colour);
    let preview = save_preview(&img, &mask, &d.cip);
    println!(
        "fill {hole_fill:.1?} ring {ring_colour:.1?} duck {duck_colour:.1?}: \
         fill gap {fill_gap:.1}, duck gap {duck_gap:.1}; preview {}",
        preview.display()
    );
    assert!(
        fill_gap < 12.0,
        "fill {hole_fill:?} differs from ring {ring_colour:?} by {fill_gap}"
    );
    assert!(
        fill_gap < duck_gap / 3.0,
        "fill gap {fill_gap} vs duck gap {duck_gap}"
    );
    // and no pixel of the hole is left near black (the "hard hole" failure)
    let darkest = d
        .cip
        .enumerate_pixels()
        .filter(|(x, y, _)| in_hole(*x, *y))
        .map(|(_, _, p)| p.0.iter().map(|&v| u32::from(v)).sum::<u32>());
    let ring_darkest = img
        .enumerate_pixels()
        .filter(|(x, y, _)| in_ring(*x, *y))
        .map(|(_, _, p)| p.0.iter().map(|&v| u32::from(v)).sum::<u32>());
    assert!(
        darkest.min() >= ring_darkest.min().map(|v| v / 2),
        "dark pixels in the filled hole"
    );
}
