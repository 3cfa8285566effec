//! `[train] loss`: `auto` resolves by the data set (voc2007: the multi-label loss), the typed key
//! is validated, label smoothing is refused with the multi-label loss, and a multi-label
//! training set gets multi-hot targets under it.
use deda_core::ClassId;
use deda_data::{DataSet, Label, Sample};
use deda_loader::SampleSource;
use deda_train::data::{source_for, source_of};
use deda_train::optim::multi_label::LossKind;
use deda_train::TrainConfig;

fn recipe(dataset: &str, train_extra: &str) -> String {
    format!(
        "[data]\ndataset = \"{dataset}\"\n[model]\nname = \"resnet18\"\n[train]\nepochs = 1\n{train_extra}\n"
    )
}

#[test]
fn auto_is_bce_on_voc_and_cross_entropy_elsewhere() {
    let voc = TrainConfig::from_toml(&recipe("voc2007:data/VOC2007", "")).unwrap();
    assert_eq!(voc.train.loss, LossKind::Auto);
    assert_eq!(voc.resolved_loss(), LossKind::Bce);
    let cub = TrainConfig::from_toml(&recipe("cub:data/CUB", "")).unwrap();
    assert_eq!(cub.resolved_loss(), LossKind::CrossEntropy);
    let forced = TrainConfig::from_toml(&recipe("voc2007:v", "loss = \"cross_entropy\"")).unwrap();
    assert_eq!(forced.resolved_loss(), LossKind::CrossEntropy);
    let bce = TrainConfig::from_toml(&recipe("cub:c", "loss = \"bce\"")).unwrap();
    assert_eq!(bce.resolved_loss(), LossKind::Bce);
    // `auto` stays out of the resolved recipe (older recipes keep their hash).
    assert!(!voc.to_toml().unwrap().contains("loss ="));
    assert!(bce.to_toml().unwrap().contains("loss = \"bce\""));
}

#[test]
fn unknown_losses_and_smoothing_with_bce_are_refused() {
    let e = TrainConfig::from_toml(&recipe("voc2007:v", "loss = \"hinge\"")).unwrap_err();
    assert!(e.to_string().contains("hinge"), "{e}");
    let checked = |extra: &str| {
        TrainConfig::from_toml(&recipe("voc2007:v", extra)).and_then(|c| c.validate().map(|_| c))
    };
    let e = checked("label_smoothing = 0.1").unwrap_err().to_string();
    assert!(
        e.contains("label_smoothing") && e.contains("multi-label"),
        "{e}"
    );
    let ce = checked("label_smoothing = 0.1\nloss = \"cross_entropy\"");
    assert!(
        ce.as_ref()
            .err()
            .is_none_or(|e| !e.to_string().contains("multi-label")),
        "{:?}",
        ce.err()
    );
}

#[test]
fn multi_label_samples_are_multi_hot_under_bce() {
    let ds = DataSet {
        name: "voc/train".into(),
        root: "r".into(),
        class_names: vec!["a".into(), "b".into(), "c".into()],
        samples: vec![
            Sample::new(
                "r".as_ref(),
                "x.jpg",
                Label::Multi(vec![ClassId(0), ClassId(2)]),
            ),
            Sample::new("r".as_ref(), "y.jpg", Label::Single(ClassId(1))),
        ],
        group_names: vec![],
    };
    let bce = source_for(&ds, LossKind::Bce);
    assert_eq!(bce.target(0), [(ClassId(0), 1.0), (ClassId(2), 1.0)]);
    assert_eq!(bce.target(1), [(ClassId(1), 1.0)]);
    let ce = source_for(&ds, LossKind::CrossEntropy);
    assert_eq!(ce.target(0), [(ClassId(0), 0.5), (ClassId(2), 0.5)]);
    assert_eq!(ce.target(0), source_of(&ds).target(0));
}
