//! Multi-label pools (Pascal VOC: one CDP per labelled class of an image, one CIP per image):
//! a combination never pastes a CDP onto the CIP of an image that contains that CDP's class
//! (neither the sample's own CDP nor the second one), the sample's own CDP is drawn among all of
//! its image's CDPs, and the bank check accepts one CDP per class but refuses a whole-image CDP
//! for a multi-label sample.
use deda_bank::{BankMeta, BankWriter, PartBank, PartDraft, Producer};
use deda_combine::{CombineConfig, Decision};
use deda_core::{rng_for, ClassId, Stream};
use deda_loader::{check_bank, Combiner, SampleEntry, VecSource};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use rand::Rng;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

const CLASSES: u32 = 6;

fn producer() -> Producer {
    Producer {
        stage: "decouple".into(),
        config_hash: "0".into(),
        seed: 0,
        weights_hash: None,
    }
}

/// `n` images with 1 to 3 random labels each (drawn with `seed`); a bank with one CDP per
/// labelled class (all but `missing_every`-th class found) and one CIP per image.
fn multi_label_set(dir: &Path, n: u32, seed: u64) -> (VecSource, PartBank) {
    let names = (0..CLASSES).map(|c| format!("class{c}")).collect();
    let bank_dir = dir.join("bank");
    let mut w = BankWriter::open(&bank_dir, &BankMeta::new(names), None).unwrap();
    let mut rng = rng_for(seed, Stream::Shuffle, &[]);
    let mut samples = Vec::new();
    for j in 0..n {
        let k = rng.random_range(1..=3);
        let mut classes = BTreeSet::new();
        while classes.len() < k {
            classes.insert(ClassId(rng.random_range(0..CLASSES)));
        }
        let id = format!("JPEGImages/{j:06}.jpg");
        let path = dir.join(&id);
        let draft = |class| PartDraft {
            class,
            source_image: id.clone(),
            bbox: None,
            producer: producer(),
        };
        for (i, &c) in classes.iter().enumerate() {
            // Now and then a labelled class was not found: no CDP of it.
            if i > 0 && rng.random_bool(0.2) {
                continue;
            }
            let cdp = RgbaImage::from_fn(6 + c.0, 5, |x, _| Rgba([200, x as u8, c.0 as u8, 255]));
            w.put_object_cdp(draft(c), &cdp).unwrap();
        }
        let first = *classes.iter().next().unwrap();
        let cip = RgbImage::from_fn(20, 16, |x, y| Rgb([x as u8, y as u8, j as u8]));
        w.put_cip(draft(first), &cip).unwrap();
        samples.push(SampleEntry {
            path,
            id,
            // multi-hot, as a VOC image is trained with the multi-label loss
            target: classes.iter().map(|&c| (c, 1.0)).collect(),
        });
    }
    drop(w);
    let source = VecSource {
        samples,
        num_classes: CLASSES as usize,
    };
    (source, PartBank::open(&bank_dir).unwrap())
}

#[test]
fn no_cdp_is_ever_pasted_onto_a_cip_of_an_image_containing_its_class() {
    for seed in 0..3u64 {
        let dir = tempfile::tempdir().unwrap();
        let (source, bank) = multi_label_set(dir.path(), 40, seed);
        let check = check_bank(&bank, bank.class_names(), &source);
        assert!(check.is_ok(), "{:?}", check.errors);
        let labels: HashMap<&str, Vec<ClassId>> = source
            .samples
            .iter()
            .map(|s| (s.id.as_str(), s.target.iter().map(|(c, _)| *c).collect()))
            .collect();
        let config = CombineConfig {
            p_aug: 1.0,
            p_mix: 0.5,
            p_syn: 0.0,
            ..CombineConfig::default()
        };
        let (combiner, _) = Combiner::from_bank(Arc::new(bank.clone()), config, &source).unwrap();
        assert!(combiner.sampler.pool().is_multi_label());
        let mut own_classes: HashMap<usize, BTreeSet<ClassId>> = HashMap::new();
        let (mut combined, mut mixed) = (0, 0);
        for i in 0..source.samples.len() {
            for draw in 0..60u64 {
                let mut rng = rng_for(seed, Stream::Combine, &[draw, i as u64]);
                let Decision::Combine(c) = combiner.sampler.sample(combiner.cdp_of[i], &mut rng)
                else {
                    continue;
                };
                combined += 1;
                assert!(!c.cip_fallback, "an allowed CIP exists in this pool");
                let cip = bank.get(&c.params.cip).unwrap();
                let backdrop = &labels[cip.source_image.as_str()];
                for (k, layer) in c.params.layers.iter().enumerate() {
                    let cdp = bank.get(&layer.cdp).unwrap();
                    assert_eq!(cdp.class, layer.class);
                    assert!(
                        !backdrop.contains(&layer.class),
                        "seed {seed} sample {i} draw {draw}: layer {k} of {} pasted onto {} \
                         whose image holds {backdrop:?}",
                        layer.class,
                        cip.source_image
                    );
                    if k == 0 {
                        assert_eq!(cdp.source_image, source.samples[i].id, "own CDP");
                        own_classes.entry(i).or_default().insert(layer.class);
                    } else {
                        assert_ne!(layer.class, c.params.layers[0].class);
                    }
                }
                mixed += usize::from(c.params.layers.len() > 1);
            }
        }
        assert!(
            combined > 1000 && mixed > 300,
            "{combined} combined, {mixed} mixed"
        );
        // Every CDP of an image is drawn as its own at some point.
        for (i, s) in source.samples.iter().enumerate() {
            let cdps: BTreeSet<ClassId> = bank.cdps_of_source(&s.id).map(|r| r.class).collect();
            assert_eq!(own_classes[&i], cdps, "sample {i}");
        }
    }
}

#[test]
fn a_whole_image_cdp_of_a_multi_label_sample_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let names = (0..CLASSES).map(|c| format!("class{c}")).collect();
    let bank_dir = dir.path().join("bank");
    let mut w = BankWriter::open(&bank_dir, &BankMeta::new(names), None).unwrap();
    let id = "JPEGImages/000001.jpg".to_string();
    let draft = PartDraft {
        class: ClassId(1),
        source_image: id.clone(),
        bbox: None,
        producer: producer(),
    };
    w.put_cdp(
        draft.clone(),
        &RgbaImage::from_pixel(4, 4, Rgba([1, 2, 3, 255])),
    )
    .unwrap();
    w.put_cip(draft, &RgbImage::new(8, 8)).unwrap();
    drop(w);
    let bank = PartBank::open(&bank_dir).unwrap();
    let source = VecSource {
        samples: vec![SampleEntry {
            path: dir.path().join(&id),
            id,
            target: vec![(ClassId(1), 1.0), (ClassId(4), 1.0)],
        }],
        num_classes: CLASSES as usize,
    };
    let check = check_bank(&bank, bank.class_names(), &source);
    assert!(!check.is_ok());
    assert!(
        check
            .errors
            .iter()
            .any(|e| e.contains("one CDP for the whole image")),
        "{:?}",
        check.errors
    );
}

/// One photo (200 × 100) with a dog at (10, 10, 40, 60) and a person at (150, 20, 30, 70), as
/// `deda decouple` stores it: a CDP per class with its own box, the CIP with the union's box
/// (scaled with the CIP when `cip_short_side` downscales it).
fn two_object_bank(dir: &Path, cip_short_side: Option<u32>) -> PartBank {
    let names = (0..CLASSES).map(|c| format!("class{c}")).collect();
    let bank_dir = dir.join("bank");
    let mut w = BankWriter::open(&bank_dir, &BankMeta::new(names), None)
        .unwrap()
        .with_cip_max_short_side(cip_short_side);
    let draft = |class, (x, y, bw, bh)| PartDraft {
        class: ClassId(class),
        source_image: "JPEGImages/000001.jpg".into(),
        bbox: Some(deda_core::BBox { x, y, w: bw, h: bh }),
        producer: producer(),
    };
    for (class, b) in [(1, (10, 10, 40, 60)), (4, (150, 20, 30, 70))] {
        let cdp = RgbaImage::from_pixel(b.2, b.3, Rgba([200, 10, 10, 255]));
        w.put_object_cdp(draft(class, b), &cdp).unwrap();
    }
    let photo = RgbImage::from_fn(200, 100, |x, y| Rgb([x as u8, y as u8, 7]));
    w.put_cip(draft(1, (10, 10, 170, 80)), &photo).unwrap();
    drop(w);
    PartBank::open(&bank_dir).unwrap()
}

#[test]
fn original_placement_puts_each_class_cdp_at_its_own_box_not_the_union() {
    use deda_combine::{CdpPlacement, Home};
    use deda_loader::PartIndex;
    let own = |b| Home::from_box(200, 100, b).unwrap();
    let (dog, person) = (own((10, 10, 40, 60)), own((150, 20, 30, 70)));
    for (cip_short_side, tolerance) in [(None, 0.0), (Some(50), 0.02)] {
        let dir = tempfile::tempdir().unwrap();
        let bank = two_object_bank(dir.path(), cip_short_side);
        let index = PartIndex::from_records(bank.records());
        let homes: Vec<(ClassId, Home)> = index
            .pool
            .cdps()
            .iter()
            .map(|c| (c.class, c.home.unwrap()))
            .collect();
        assert_eq!(homes.len(), 2);
        for (class, home) in homes {
            let want = if class == ClassId(1) { dog } else { person };
            let close = (home.scale - want.scale).abs() <= tolerance
                && (home.center.0 - want.center.0).abs() <= tolerance
                && (home.center.1 - want.center.1).abs() <= tolerance;
            assert!(
                close,
                "{cip_short_side:?}: class {class} at {home:?}, its box is {want:?}"
            );
        }
        // The sampler pastes the sample's own CDP there under placement = "original".
        let source = VecSource {
            samples: vec![SampleEntry {
                path: dir.path().join("JPEGImages/000001.jpg"),
                id: "JPEGImages/000001.jpg".into(),
                target: vec![(ClassId(1), 1.0), (ClassId(4), 1.0)],
            }],
            num_classes: CLASSES as usize,
        };
        let config = CombineConfig {
            p_aug: 1.0,
            p_mix: 0.0,
            p_syn: 0.0,
            cip_source: deda_combine::CipSource::Own,
            placement: CdpPlacement::Original,
            ..CombineConfig::default()
        };
        let (combiner, _) = Combiner::from_bank(Arc::new(bank), config, &source).unwrap();
        let mut seen = BTreeSet::new();
        for draw in 0..40u64 {
            let mut rng = rng_for(1, Stream::Combine, &[draw, 0]);
            if let Decision::Combine(c) = combiner.sampler.sample(combiner.cdp_of[0], &mut rng) {
                let layer = &c.params.layers[0];
                let want = if layer.class == ClassId(1) {
                    dog
                } else {
                    person
                };
                assert!(
                    (layer.center.0 - want.center.0).abs() <= tolerance.max(1e-6),
                    "{layer:?} vs {want:?}"
                );
                seen.insert(layer.class);
            }
        }
        assert_eq!(seen.len(), 2, "both CDPs drawn: {seen:?}");
    }
}
