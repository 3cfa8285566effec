//! The CLIP filters' preprocessing (`deda_sd::generators::scorer::clip_pixel_values`) against
//! transformers' `CLIPImageProcessor` (Pillow 12.3): the resized and cropped bytes exactly, the
//! normalised pixels within the reference's own float32 spread. Fixture made by
//! tools/parity/make_clip_image_processor_fixture.py.
use std::collections::HashMap;
use std::path::PathBuf;

use deda_parity::tensor::assert_tensor_close;
use deda_parity::Tolerance;
use deda_sd::generators::scorer::{clip_crop, clip_pixel_values};
use image::RgbImage;
use tch::{Kind, Tensor};

fn data() -> HashMap<String, Tensor> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/clip_image_processor.safetensors");
    Tensor::read_safetensors(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        .into_iter()
        .collect()
}

fn rgb(t: &Tensor) -> RgbImage {
    let [h, w, 3] = t.size()[..] else {
        panic!("not (H, W, 3): {:?}", t.size())
    };
    let bytes = Vec::<u8>::try_from(t.flatten(0, -1)).unwrap_or_else(|e| panic!("{e}"));
    RgbImage::from_raw(w as u32, h as u32, bytes).unwrap_or_else(|| panic!("bad image"))
}

#[test]
fn crops_and_pixels_are_the_processors() {
    let d = data();
    let tol = Tolerance::from_spread(d["spread"].double_value(&[0]));
    let cases = (0..)
        .take_while(|i| d.contains_key(&format!("image.{i}")))
        .count();
    assert!(cases >= 5, "{cases} cases");
    for i in 0..cases {
        let image = rgb(&d[&format!("image.{i}")]);
        let size = d[&format!("size.{i}")].int64_value(&[0]) as u32;
        let want = rgb(&d[&format!("crop.{i}")]);
        let got = clip_crop(&image, size);
        assert_eq!(got.dimensions(), (size, size), "case {i}");
        let first = got
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .position(|(a, b)| a != b);
        assert!(
            first.is_none(),
            "case {i} ({:?} at {size}): crop differs first at byte {first:?}",
            image.dimensions()
        );
        let pixels = clip_pixel_values(&image, size);
        assert_eq!(pixels.kind(), Kind::Float);
        assert_tensor_close(
            &format!("pixel_values.{i}"),
            &pixels,
            &d[&format!("pixel_values.{i}")],
            tol,
        );
    }
}
