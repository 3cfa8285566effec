//! Parity of deda-combine's DiffuseMix image rule with the reference's own functions
//! (`khawar-islam/diffuseMix`, `augment/utils.py`: `Utils.combine_images`,
//! `Utils.blend_images_with_resize`, `Utils.is_black_image`).
//!
//! Fixture: `tests/fixtures/diffusemix.json`, made by `tools/parity/make_diffusemix_fixture.py`
//! on random 8-bit images in both directions. Outputs are 8-bit: every byte must be equal.
use deda_combine::peers::diffusemix::{
    blend_fractal, hybrid, is_blank, Direction, BLEND_WIDTH, FRACTAL_ALPHA,
};
use deda_parity::{assert_close, Tolerance};
use image::RgbImage;
use serde_json::Value;

fn fixture() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diffusemix.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| u8::try_from(x.as_u64().unwrap()).unwrap())
        .collect()
}

fn image(c: &Value, key: &str) -> RgbImage {
    let (w, h) = (
        c["width"].as_u64().unwrap() as u32,
        c["height"].as_u64().unwrap() as u32,
    );
    RgbImage::from_raw(w, h, bytes(&c[key])).unwrap()
}

#[test]
fn hybrid_and_fractal_blend_match_the_reference_byte_for_byte() {
    let f = fixture();
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for c in cases {
        let direction = match c["direction"].as_str().unwrap() {
            "horizontal" => Direction::Horizontal,
            "vertical" => Direction::Vertical,
            other => panic!("direction {other}"),
        };
        let what = format!("{}x{} {direction:?}", c["width"], c["height"]);
        let (w, h) = (
            c["width"].as_u64().unwrap() as usize,
            c["height"].as_u64().unwrap() as usize,
        );
        let joined = hybrid(
            &image(c, "original"),
            &image(c, "generated"),
            direction,
            BLEND_WIDTH,
        )
        .unwrap();
        let want = bytes(&c["hybrid"]);
        assert_close(
            &format!("DiffuseMix hybrid {what}"),
            joined.as_raw(),
            &want,
            &[h, w, 3],
            Tolerance::EXACT,
        );
        let blended = blend_fractal(&joined, &image(c, "fractal"), FRACTAL_ALPHA).unwrap();
        let want = bytes(&c["blended"]);
        assert_close(
            &format!("DiffuseMix fractal blend {what}"),
            blended.as_raw(),
            &want,
            &[h, w, 3],
            Tolerance::EXACT,
        );
        assert_eq!(
            is_blank(&image(c, "generated")),
            c["is_black_generated"].as_bool().unwrap()
        );
    }
}

#[test]
fn blank_check_agrees_with_the_reference_on_its_white_level() {
    for c in fixture()["black_checks"].as_array().unwrap() {
        let img = image(c, "pixels");
        assert_eq!(
            is_blank(&img),
            c["is_black"].as_bool().unwrap(),
            "{}",
            c["name"]
        );
    }
}
