//! `deda run` of a Pascal VOC De-DA recipe through the binary on a tiny VOC 2007 layout written
//! here (JPEGs with two labelled classes each, XML annotations, `SegmentationClass` masks for
//! all but one training image): ground-truth decoupling gives one CDP per (image, class) and one
//! CIP per image, training runs one epoch with the multi-label loss, and the run reports the
//! test mAP (`metrics.jsonl`, `report.md`).
// batch_size 4 of the 5 training images: the last batch of one image would put batch norm on a
// single 1x1 feature map of this tiny network (NaN running variance, NaN logits); the training
// loader drops it (loader.min_last_batch = 2, the default), so one step is trained.
#[path = "../../decouple/tests/common/tiny_voc.rs"]
mod tiny_voc;

mod common;

const RECIPE: &str = r#"
[data]
dataset = "voc2007:VOC2007"
[model]
name = "resnet18"
width = 8
layers = [1, 1, 1, 1]
[loader]
batch_size = 4
threads = 1
resize_short = 36
crop = 32
[optim]
lr = 0.05
[optim.schedule]
kind = "constant"
[method]
name = "deda"
bank = "banks/voc"
[method.combine]
p_aug = 0.5
p_syn = 0.0
p_mix = 0.5
[stages.decouple]
segmenter = "ground-truth"
prompt = "{label}"
max_nothing_found = 0.5
[train]
epochs = 1
seed = 3
device = "cpu"
torch_threads = 1
"#;

#[test]
fn a_voc_recipe_decouples_per_class_trains_one_epoch_and_reports_map() {
    let dir = tempfile::tempdir().unwrap();
    tiny_voc::write(&dir.path().join("VOC2007"));
    std::fs::write(dir.path().join("voc.toml"), RECIPE).unwrap();
    let out = common::deda_code(dir.path(), &["run", "voc.toml", "--run-dir", "runs/voc"], 0);

    // One CDP per (image, labelled class) and one CIP per image of the 4 masked images.
    let manifest = std::fs::read_to_string(dir.path().join("banks/voc/manifest.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = manifest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kind = |k: &str| records.iter().filter(|r| r["kind"] == k).count();
    assert_eq!((kind("cdp"), kind("cip")), (8, 4), "{manifest}");
    for (id, objects) in &tiny_voc::train_images()[..4] {
        let sample = format!("JPEGImages/{id}.jpg");
        let mut classes: Vec<u64> = records
            .iter()
            .filter(|r| r["kind"] == "cdp" && r["source_image"] == sample.as_str())
            .map(|r| r["class"].as_u64().unwrap())
            .collect();
        classes.sort_unstable();
        let mut want: Vec<u64> = objects.iter().map(|(c, _)| *c as u64).collect();
        want.sort_unstable();
        assert_eq!(classes, want, "{sample}");
    }

    // The run trained with the multi-label loss and reports the test mAP.
    let run = dir.path().join("runs/voc");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    assert_eq!(
        last["step"], 1,
        "the final batch of one image is dropped: {metrics}"
    );
    let map = last["map"]
        .as_f64()
        .unwrap_or_else(|| panic!("no mAP: {metrics}"));
    assert!(
        (0.0..=1.0).contains(&map) || (0.0..=100.0).contains(&map),
        "{map}"
    );
    let resolved = std::fs::read_to_string(run.join("config.resolved.toml")).unwrap();
    assert!(!resolved.contains("loss ="), "auto is left out: {resolved}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("mAP"), "{report}");
    assert!(out.contains("test mAP"), "{out}");
}
