//! Benchmark builders on real assets: the subset committed in `testdata/assets` (30 cut-outs, 4
//! scenes), found by the one test-input resolver (`testdata/locate.rs`).
use deda_data::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[path = "../../../testdata/locate.rs"]
mod locate;

fn assets_dir() -> PathBuf {
    let tsv = locate::require("assets/cutouts.tsv");
    tsv.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Relative path → SHA-256 of every file under `dir`.
fn tree_hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(
                    rel,
                    deda_core::hash::sha256_hex(&std::fs::read(&p).unwrap()),
                );
            }
        }
    }
    out
}

fn small_waterbirds() -> MiniWaterbirdsConfig {
    MiniWaterbirdsConfig {
        size: 64,
        per_bird_train: 20,
        per_bird_test: 4,
        max_birds_per_habitat: Some(3),
        ..Default::default()
    }
}

#[test]
fn mini_waterbirds_reads_back_with_the_planned_correlation_and_masks() {
    let out = tempfile::tempdir().unwrap();
    let cfg = small_waterbirds();
    let report = build_mini_waterbirds(&assets_dir(), out.path(), &cfg).unwrap();
    // 3 birds per habitat → 2 train + 1 test each; train: 2 birds × 20 = 40 per y.
    assert_eq!((report.train_images, report.test_images), (80, 8));
    let s = read_waterbirds(out.path(), WaterbirdsLabels::Binary).unwrap();
    assert_eq!(s.train.class_names, vec!["landbird", "waterbird"]);
    // round(40 · 0.95) = 38 on the matching place, 2 on the other, for each y.
    assert_eq!(s.train.group_counts(), vec![38, 2, 2, 38]);
    assert_eq!(s.test.group_counts(), vec![2, 2, 2, 2]);
    assert_eq!(report.counts["train/waterbird_water"], 38);
    let masks = GroundTruthMasks::mini_waterbirds(out.path());
    for sample in s.train.samples.iter().chain(&s.test.samples) {
        let m = masks
            .mask_path(sample)
            .unwrap_or_else(|| panic!("no mask for {}", sample.id));
        let mask = deda_core::image_io::load(&m).unwrap().into_luma8();
        let img = deda_core::image_io::load_rgb(&sample.path).unwrap();
        assert_eq!(mask.dimensions(), (64, 64));
        assert_eq!(img.dimensions(), (64, 64));
        let fg = mask.pixels().filter(|p| p[0] > 127).count();
        assert!(
            fg > 64 && fg < 64 * 64 * 3 / 4,
            "{}: implausible mask area {fg}",
            sample.id
        );
    }
    // Test birds and test scenes are unseen in train.
    let recipe: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report.recipe_path).unwrap()).unwrap();
    let part = &recipe["partition"];
    for (tr, te) in [
        ("train_birds", "test_birds"),
        ("train_backgrounds", "test_backgrounds"),
    ] {
        let tr = part[tr].as_array().unwrap();
        assert!(
            part[te].as_array().unwrap().iter().all(|b| !tr.contains(b)),
            "{te} overlaps"
        );
    }
    assert_eq!(recipe["seed"], 0);
    let species = read_waterbirds(out.path(), WaterbirdsLabels::Species).unwrap();
    assert!(species.train.num_classes() <= 35);
}

#[test]
fn mini_waterbirds_without_held_out_birds_shifts_only_the_background() {
    let out = tempfile::tempdir().unwrap();
    let cfg = MiniWaterbirdsConfig {
        test_bird_fraction: 0.0,
        per_bird_train: 4,
        per_bird_test: 2,
        ..small_waterbirds()
    };
    let report = build_mini_waterbirds(&assets_dir(), out.path(), &cfg).unwrap();
    // 3 birds per habitat, all in both splits.
    assert_eq!((report.train_images, report.test_images), (24, 12));
    let recipe: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report.recipe_path).unwrap()).unwrap();
    let part = &recipe["partition"];
    assert_eq!(part["train_birds"], part["test_birds"]);
    assert_eq!(part["train_birds"].as_array().unwrap().len(), 6);
    let train_scenes = part["train_backgrounds"].as_array().unwrap();
    assert!(part["test_backgrounds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| !train_scenes.contains(b)));
    let s = read_waterbirds(out.path(), WaterbirdsLabels::Binary).unwrap();
    assert_eq!(s.test.group_counts(), vec![3, 3, 3, 3]);
}

#[test]
fn mini_waterbirds_is_byte_identical_for_the_same_seed() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = MiniWaterbirdsConfig {
        per_bird_train: 4,
        per_bird_test: 2,
        max_birds_per_habitat: Some(2),
        ..small_waterbirds()
    };
    build_mini_waterbirds(&assets_dir(), a.path(), &cfg).unwrap();
    build_mini_waterbirds(&assets_dir(), b.path(), &cfg).unwrap();
    let (ha, hb) = (tree_hashes(a.path()), tree_hashes(b.path()));
    assert!(ha.len() > 10);
    assert_eq!(ha, hb);
    let c = tempfile::tempdir().unwrap();
    build_mini_waterbirds(
        &assets_dir(),
        c.path(),
        &MiniWaterbirdsConfig { seed: 1, ..cfg },
    )
    .unwrap();
    assert_ne!(tree_hashes(c.path())["metadata.csv"], ha["metadata.csv"]);
}

#[test]
fn scarce_multiclass_makes_several_composites_of_each_training_cutout() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = ScarceMulticlassConfig {
        size: 48,
        shots: 2,
        test_cutouts_per_class: 1,
        per_cutout_test: 1,
        ..Default::default()
    };
    build_scarce_multiclass(&assets_dir(), one.path(), &cfg).unwrap();
    let cfg2 = ScarceMulticlassConfig {
        per_cutout_train: 3,
        ..cfg.clone()
    };
    let report = build_scarce_multiclass(&assets_dir(), two.path(), &cfg2).unwrap();
    assert_eq!((report.train_images, report.test_images), (42, 7));
    let s = read_image_folder_split(two.path()).unwrap();
    assert_eq!(s.train.class_counts(), vec![6; 7]);
    // Same objects (the split does not depend on the composite count), three scenes each.
    let objects = |dir: &Path| {
        let mut v: Vec<String> = read_image_folder_split(dir)
            .unwrap()
            .train
            .samples
            .iter()
            .map(|x| {
                let name = x.path.file_stem().unwrap().to_string_lossy().into_owned();
                name.rsplit_once('_').unwrap().0.to_string()
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(objects(one.path()), objects(two.path()));
    let h1 = tree_hashes(one.path());
    let h2 = tree_hashes(two.path());
    let first = h1.keys().find(|k| k.starts_with("train/")).unwrap();
    assert_eq!(
        h1[first], h2[first],
        "composite 0 of a cut-out is unchanged"
    );
    let again = tree_hashes(two.path());
    let distinct: std::collections::BTreeSet<_> = again
        .iter()
        .filter(|(k, _)| k.starts_with("train/bird/"))
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(distinct.len(), 6, "every composite differs");
}

#[test]
fn scarce_multiclass_reads_back_as_image_folder_and_is_deterministic() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = ScarceMulticlassConfig {
        size: 48,
        shots: 2,
        test_cutouts_per_class: 1,
        per_cutout_test: 2,
        ..Default::default()
    };
    let report = build_scarce_multiclass(&assets_dir(), a.path(), &cfg).unwrap();
    assert_eq!((report.train_images, report.test_images), (14, 14));
    let s = read_image_folder_split(a.path()).unwrap();
    assert_eq!(
        s.train.class_names,
        vec![
            "bird",
            "fish",
            "flower",
            "fruit",
            "insect",
            "mammal",
            "vegetable"
        ]
    );
    assert_eq!(s.train.class_counts(), vec![2; 7]);
    assert_eq!(s.test.class_counts(), vec![2; 7]);
    let masks = GroundTruthMasks::scarce_multiclass(a.path());
    assert!(s
        .train
        .samples
        .iter()
        .chain(&s.test.samples)
        .all(|x| masks.mask_path(x).is_some()));
    // Train cut-outs are distinct within a class and never used in test.
    let cutout = |id: &str| {
        id.rsplit('/')
            .next()
            .unwrap()
            .rsplit_once('_')
            .unwrap()
            .0
            .to_string()
    };
    let train: Vec<String> = s.train.samples.iter().map(|x| cutout(&x.id)).collect();
    let mut dedup = train.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 14);
    assert!(s
        .test
        .samples
        .iter()
        .all(|x| !train.contains(&cutout(&x.id))));
    build_scarce_multiclass(&assets_dir(), b.path(), &cfg).unwrap();
    assert_eq!(tree_hashes(a.path()), tree_hashes(b.path()));
}

#[test]
fn invalid_configs_list_every_problem() {
    let cfg = MiniWaterbirdsConfig {
        size: 4,
        train_correlation: 1.5,
        per_bird_test: 0,
        ..Default::default()
    };
    let msg = cfg.validate().unwrap_err().to_string();
    assert!(
        msg.contains("size") && msg.contains("train_correlation") && msg.contains("per_bird_test"),
        "{msg}"
    );
    let cfg = ScarceMulticlassConfig {
        shots: 8,
        test_cutouts_per_class: 3,
        size: 32,
        ..Default::default()
    };
    let out = tempfile::tempdir().unwrap();
    let msg = build_scarce_multiclass(&assets_dir(), out.path(), &cfg)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("\"insect\" has 9 cut-outs"), "{msg}");
}

#[test]
fn configs_reject_unknown_fields() {
    let err =
        serde_json::from_str::<MiniWaterbirdsConfig>(r#"{"seed": 3, "sise": 64}"#).unwrap_err();
    assert!(err.to_string().contains("sise"));
    let ok: MiniWaterbirdsConfig = serde_json::from_str(r#"{"seed": 3}"#).unwrap();
    assert_eq!(ok.size, 256);
}
