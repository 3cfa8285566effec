//! Behaviour of the pure composition.
use deda_combine::{compose, CombineParams, Composite, Compositor, LayerParams};
use deda_core::ClassId;
use image::{Rgb, RgbImage, Rgba, RgbaImage};

fn layer(class: u32, scale: f32, center: (f32, f32)) -> LayerParams {
    LayerParams {
        cdp: format!("cdp/{class}").as_str().into(),
        class: ClassId(class),
        synthetic: false,
        scale,
        center,
        flip: false,
        rotation_deg: 0.0,
    }
}

fn params(layers: Vec<LayerParams>) -> CombineParams {
    CombineParams {
        cip: "cip/0".into(),
        layers,
    }
}

fn gradient_cip(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]))
}

fn run(cip: &RgbImage, cdps: &[&RgbaImage], p: &CombineParams, w: u32, h: u32) -> Composite {
    compose(cip, cdps, p, w, h, &mut Compositor::new()).unwrap()
}

#[test]
fn fully_transparent_cdp_leaves_backdrop_and_falls_back_to_first_class() {
    let cip = gradient_cip(64, 64);
    let cdp = RgbaImage::from_pixel(20, 30, Rgba([255, 0, 0, 0]));
    let mut p = params(vec![layer(3, 0.6, (0.5, 0.5))]);
    p.layers[0].rotation_deg = 10.0;
    let c = run(&cip, &[&cdp], &p, 64, 64);
    assert_eq!(c.image, cip, "a transparent CDP changed the backdrop");
    assert_eq!(c.visible, vec![0.0]);
    assert!(c.label_fallback);
    assert_eq!(c.weights, vec![(ClassId(3), 1.0)]);
}

#[test]
fn opaque_cdp_larger_than_canvas_covers_everything() {
    let cip = gradient_cip(80, 60);
    let cdp = RgbaImage::from_pixel(10, 10, Rgba([9, 99, 199, 255]));
    let p = params(vec![layer(1, 1.5, (0.5, 0.5))]);
    let c = run(&cip, &[&cdp], &p, 80, 60);
    assert!(c.image.pixels().all(|px| px.0 == [9, 99, 199]));
    assert!((c.visible[0] - 80.0 * 60.0).abs() < 1e-3, "{:?}", c.visible);
    assert_eq!(c.weights, vec![(ClassId(1), 1.0)]);
    assert!(!c.label_fallback);
}

#[test]
fn two_separate_layers_are_weighted_by_their_alpha_areas() {
    let cip = gradient_cip(200, 100);
    // Layer A: 20x20 opaque; layer B: 20x10 opaque, same pixel scale (longer side 20 -> 0.2 * 100).
    let a = RgbaImage::from_pixel(20, 20, Rgba([255, 0, 0, 255]));
    let b = RgbaImage::from_pixel(20, 10, Rgba([0, 255, 0, 255]));
    let p = params(vec![layer(0, 0.2, (0.25, 0.5)), layer(1, 0.2, (0.75, 0.5))]);
    let c = run(&cip, &[&a, &b], &p, 200, 100);
    // Each side loses half a pixel of alpha at its edges through bilinear sampling.
    assert!((c.visible[0] - 400.0).abs() < 1.0, "{:?}", c.visible);
    assert!((c.visible[1] - 200.0).abs() < 1.0, "{:?}", c.visible);
    let w0 = c.weights[0].1;
    assert!((w0 - 2.0 / 3.0).abs() < 0.01, "{:?}", c.weights);
    let sum: f32 = c.weights.iter().map(|w| w.1).sum();
    assert!((sum - 1.0).abs() < 1e-6);
}

#[test]
fn a_fully_occluded_first_layer_gets_weight_zero() {
    let cip = gradient_cip(100, 100);
    let small = RgbaImage::from_pixel(10, 10, Rgba([255, 0, 0, 255]));
    let big = RgbaImage::from_pixel(50, 50, Rgba([0, 0, 255, 255]));
    let p = params(vec![layer(0, 0.2, (0.5, 0.5)), layer(1, 0.8, (0.5, 0.5))]);
    let c = run(&cip, &[&small, &big], &p, 100, 100);
    assert_eq!(c.visible[0], 0.0);
    assert_eq!(c.weights, vec![(ClassId(0), 0.0), (ClassId(1), 1.0)]);
    assert!(!c.image.pixels().any(|px| px.0[0] > 0 && px.0[2] == 0));
}

#[test]
fn same_class_layers_are_merged() {
    let cip = gradient_cip(100, 100);
    let a = RgbaImage::from_pixel(10, 10, Rgba([255, 0, 0, 255]));
    let p = params(vec![layer(4, 0.2, (0.2, 0.2)), layer(4, 0.2, (0.8, 0.8))]);
    let c = run(&cip, &[&a, &a], &p, 100, 100);
    assert_eq!(c.weights.len(), 1);
    assert!((c.weights[0].1 - 1.0).abs() < 1e-6);
}

#[test]
fn one_pixel_cdp_and_extreme_canvases_work() {
    let dot = RgbaImage::from_pixel(1, 1, Rgba([200, 10, 10, 255]));
    let big_cdp = RgbaImage::from_fn(1500, 900, |x, y| Rgba([x as u8, y as u8, 3, 255]));
    let cip = gradient_cip(640, 480);
    for (w, h) in [(1, 1), (1, 300), (3, 2), (448, 448), (2500, 1700)] {
        for cdp in [&dot, &big_cdp] {
            let mut p = params(vec![layer(2, 0.5, (0.5, 0.5))]);
            p.layers[0].rotation_deg = 7.0;
            p.layers[0].flip = true;
            let c = run(&cip, &[cdp], &p, w, h);
            assert_eq!(c.image.dimensions(), (w, h));
            assert!(c.visible[0] > 0.0, "{w}x{h}: nothing visible");
        }
    }
}

#[test]
fn strong_downscale_does_not_alias_a_checkerboard() {
    // A 1-pixel checkerboard shrunk 20x must come out close to mid-grey (box filter), not
    // black or white as point sampling would give.
    let cdp = RgbaImage::from_fn(400, 400, |x, y| {
        let v = if (x + y) % 2 == 0 { 255 } else { 0 };
        Rgba([v, v, v, 255])
    });
    let cip = RgbImage::from_pixel(100, 100, Rgb([0, 0, 0]));
    let p = params(vec![layer(0, 0.2, (0.5, 0.5))]);
    let c = run(&cip, &[&cdp], &p, 100, 100);
    let centre = c.image.get_pixel(50, 50).0[0];
    assert!((118..=138).contains(&centre), "centre pixel {centre}");
}

#[test]
fn flip_mirrors_the_layer() {
    // Left half red, right half blue; flipped, the left side of the pasted object is blue.
    let cdp = RgbaImage::from_fn(40, 40, |x, _| {
        if x < 20 {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 255, 255])
        }
    });
    let cip = RgbImage::from_pixel(100, 100, Rgb([0, 0, 0]));
    let mut p = params(vec![layer(0, 0.4, (0.5, 0.5))]);
    let plain = run(&cip, &[&cdp], &p, 100, 100);
    p.layers[0].flip = true;
    let flipped = run(&cip, &[&cdp], &p, 100, 100);
    assert_eq!(plain.image.get_pixel(40, 50).0, [255, 0, 0]);
    assert_eq!(flipped.image.get_pixel(40, 50).0, [0, 0, 255]);
}

#[test]
fn rotation_by_90_degrees_turns_the_object_counter_clockwise() {
    // A wide bar rotated by 90 degrees becomes a tall bar; its top (after CCW turn) is the
    // object's right end.
    let cdp = RgbaImage::from_fn(40, 10, |x, _| {
        if x < 20 {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 255, 0, 255])
        }
    });
    let cip = RgbImage::from_pixel(100, 100, Rgb([0, 0, 0]));
    let mut p = params(vec![layer(0, 0.4, (0.5, 0.5))]);
    p.layers[0].rotation_deg = 90.0;
    let c = run(&cip, &[&cdp], &p, 100, 100);
    assert_eq!(
        c.image.get_pixel(50, 35).0,
        [0, 255, 0],
        "top should be the right end"
    );
    assert_eq!(c.image.get_pixel(50, 65).0, [255, 0, 0]);
    assert_eq!(
        c.image.get_pixel(35, 50).0,
        [0, 0, 0],
        "a rotated bar is narrow"
    );
}

#[test]
fn mismatched_inputs_are_errors_naming_the_cip() {
    let cip = gradient_cip(10, 10);
    let cdp = RgbaImage::from_pixel(5, 5, Rgba([1, 2, 3, 255]));
    let p = params(vec![layer(0, 0.5, (0.5, 0.5))]);
    let e = compose(&cip, &[], &p, 10, 10, &mut Compositor::new()).unwrap_err();
    assert!(e.to_string().contains("cip/0"), "{e}");
    let e = compose(&cip, &[&cdp], &p, 0, 10, &mut Compositor::new()).unwrap_err();
    assert!(e.to_string().contains("canvas"), "{e}");
    let mut bad = p.clone();
    bad.layers[0].scale = -1.0;
    assert!(compose(&cip, &[&cdp], &bad, 10, 10, &mut Compositor::new()).is_err());
}

#[test]
fn a_recycled_canvas_gives_the_same_image_as_a_new_one() {
    let cdp = RgbaImage::from_fn(30, 20, |x, y| {
        Rgba([x as u8 * 8, y as u8 * 12, 40, (x * y) as u8])
    });
    let p = params(vec![layer(0, 0.6, (0.4, 0.55))]);
    let mut reused = Compositor::new();
    reused.recycle(RgbImage::from_pixel(64, 48, Rgb([255, 255, 255])));
    let cip = gradient_cip(50, 80);
    let a = compose(&cip, &[&cdp], &p, 64, 48, &mut reused).unwrap();
    let b = compose(&cip, &[&cdp], &p, 64, 48, &mut Compositor::new()).unwrap();
    assert_eq!(a, b);
    // A recycled canvas of another size is resized.
    reused.recycle(a.image);
    let c = compose(&cip, &[&cdp], &p, 30, 90, &mut reused).unwrap();
    assert_eq!(
        c,
        compose(&cip, &[&cdp], &p, 30, 90, &mut Compositor::new()).unwrap()
    );
}
