//! Helpers shared by the parity tests of DenseNet, ViT and EfficientNet-Lite (fixtures made by
//! tools/parity/make_{densenet,vit,efficientnet_lite}_fixture.py; files described in
//! tools/parity/nets_fixture_common.py).
#![allow(dead_code)]
use std::collections::{BTreeMap, HashMap};

use deda_nets::{Model, NetModel, Network};
use tch::{Device, Kind, Tensor};

use crate::common::{assert_close, fixture_dir, Tolerance};

/// Builds a tiny model and loads the fixture's weights, checking every variable was loaded.
pub fn loaded<N: Network>(fixture: &str, config: N::Config) -> NetModel<N> {
    let mut m = NetModel::<N>::new(fixture, config, Device::Cpu, 0).unwrap();
    let report = m
        .load_safetensors(&fixture_dir(fixture).join("weights.safetensors"))
        .unwrap();
    assert_eq!(report.loaded, m.var_store().variables().len(), "{fixture}");
    assert!(report.defaulted.is_empty() && report.skipped.is_empty());
    m
}

/// The soft-label cross-entropy of the fixtures: mean_n(-sum_c t·log_softmax(z)).
pub fn soft_ce(logits: &Tensor, targets: &Tensor) -> Tensor {
    -(targets * logits.log_softmax(1, Kind::Float))
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float)
}

/// Compares the loss of train-mode `logits`, the gradients of every `grad.<name>` of the
/// fixture after one backward, and every `after_train.<name>` buffer (running statistics after
/// the single train-mode forward that produced `logits`).
pub fn check_loss_grads_and_buffers(
    what: &str,
    m: &dyn Model,
    logits: &Tensor,
    d: &HashMap<String, Tensor>,
    tol: Tolerance,
) {
    let loss = soft_ce(logits, &d["targets"]);
    assert_close(&format!("{what} loss"), &loss.reshape([1]), &d["loss"], tol);
    loss.backward();
    let vars = m.var_store().variables();
    let mut checked = 0;
    for (key, want) in d {
        if let Some(name) = key.strip_prefix("grad.") {
            let var = vars
                .get(name)
                .unwrap_or_else(|| panic!("{what}: no variable {name}"));
            assert_close(&format!("{what} {key}"), &var.grad(), want, tol);
            checked += 1;
        }
        if let Some(name) = key.strip_prefix("after_train.") {
            let var = &vars[name];
            assert_close(&format!("{what} {key}"), var, want, tol);
            checked += 1;
        }
    }
    assert!(checked > 0, "{what}: fixture has no grad.* entries");
}

/// Asserts that the model's variables have exactly the reference's names and shapes
/// (`<fixtures>/<file>`, written by the fixture scripts), listing every difference.
pub fn assert_names_match(file: &str, m: &dyn Model) {
    let p = fixture_dir("").join(file);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let want: BTreeMap<String, Vec<i64>> = serde_json::from_str(&text).unwrap();
    let got: BTreeMap<String, Vec<i64>> = m
        .var_store()
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.size()))
        .collect();
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let shapes: Vec<_> = want
        .iter()
        .filter(|(k, s)| got.get(*k).is_some_and(|g| g != *s))
        .map(|(k, s)| format!("{k}: reference {s:?} ours {:?}", got[k]))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && shapes.is_empty(),
        "{}: {} vs {file}: missing {missing:?}, extra {extra:?}, shapes {shapes:?}",
        m.name(),
        want.len()
    );
    println!("{}: {} names and shapes match {file}", m.name(), want.len());
}
