//! `deda_core::pil_resize` against Pillow's own `Image.resize` (bilinear and bicubic), byte for
//! byte: fixture `tests/fixtures/pil_resize.json` from `tools/parity/make_pil_resize_fixture.py`.
use deda_core::pil_resize::{resize_pil, resize_rgb_pil_with, PilFilter};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pil_resize.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bytes(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array"))
        .iter()
        .map(|x| {
            x.as_u64()
                .and_then(|x| u8::try_from(x).ok())
                .unwrap_or_else(|| panic!("{x}"))
        })
        .collect()
}

fn size(v: &Value, key: &str) -> u32 {
    v[key]
        .as_u64()
        .and_then(|x| u32::try_from(x).ok())
        .unwrap_or_else(|| panic!("{key}"))
}

#[test]
fn every_case_is_pillows_bytes() {
    let fx = fixture();
    let images = fx["images"].as_array().unwrap_or_else(|| panic!("images"));
    let cases = fx["cases"].as_array().unwrap_or_else(|| panic!("cases"));
    assert!(cases.len() >= 20, "fixture has {} cases", cases.len());
    let mut filters = std::collections::BTreeSet::new();
    for (i, case) in cases.iter().enumerate() {
        let image = &images[case["image"].as_u64().unwrap_or_else(|| panic!("image")) as usize];
        let ch = if image["mode"] == "RGB" { 3 } else { 1 };
        let src = bytes(&image["pixels"]);
        let filter = match case["filter"].as_str() {
            Some("bilinear") => PilFilter::Bilinear,
            Some("bicubic") => PilFilter::Bicubic,
            f => panic!("case {i}: filter {f:?}"),
        };
        filters.insert(format!("{filter:?}"));
        let (iw, ih) = (size(image, "width"), size(image, "height"));
        let (ow, oh) = (size(case, "width"), size(case, "height"));
        let want = bytes(&case["pixels"]);
        let got = resize_pil(&src, (iw, ih), (ow, oh), ch, filter);
        assert_eq!(got.len(), want.len(), "case {i}");
        let diff = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(
            diff.is_none(),
            "case {i} ({filter:?} {iw}x{ih}x{ch} -> {ow}x{oh}): first difference at byte {diff:?}: ours {:?}, Pillow {:?}",
            diff.map(|d| got[d]),
            diff.map(|d| want[d])
        );
        if ch == 3 {
            let img = image::RgbImage::from_raw(iw, ih, src).unwrap_or_else(|| panic!("case {i}"));
            assert_eq!(
                resize_rgb_pil_with(&img, ow, oh, filter).into_raw(),
                want,
                "case {i}"
            );
        }
    }
    assert_eq!(filters.len(), 2, "both filters covered");
}
