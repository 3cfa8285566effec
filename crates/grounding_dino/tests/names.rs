//! The full-size model (default config = IDEA-Research/grounding-dino-tiny) has exactly
//! transformers' parameter names and shapes (tests/fixtures/grounding_dino_tiny_names.json, from
//! the meta-device model), except the tied aliases transformers drops when saving
//! (`bbox_embed.1..`, `model.decoder.bbox_embed.*`, see `_tied_weights_keys`).
use std::collections::BTreeMap;
use std::path::PathBuf;

use deda_grounding_dino::{GroundingDinoConfig, GroundingDinoForObjectDetection};
use tch::nn::VarStore;
use tch::Device;

#[test]
fn full_size_names_and_shapes_match_transformers() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/grounding_dino_tiny_names.json");
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("missing {}: {e}", p.display()));
    let all: BTreeMap<String, Vec<i64>> = serde_json::from_str(&text).unwrap();
    let tied = |n: &str| {
        n.starts_with("model.decoder.bbox_embed.")
            || (n.starts_with("bbox_embed.") && !n.starts_with("bbox_embed.0."))
    };
    let want: BTreeMap<String, Vec<i64>> = all.into_iter().filter(|(n, _)| !tied(n)).collect();
    let vs = VarStore::new(Device::Cpu);
    let _model = GroundingDinoForObjectDetection::new(&vs.root(), &GroundingDinoConfig::default());
    let got: BTreeMap<String, Vec<i64>> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    let missing: Vec<_> = want.keys().filter(|n| !got.contains_key(*n)).collect();
    let extra: Vec<_> = got.keys().filter(|n| !want.contains_key(*n)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    for (n, s) in &want {
        assert_eq!(&got[n], s, "{n}");
    }
    assert!(want.len() > 900, "{} names", want.len());
}
