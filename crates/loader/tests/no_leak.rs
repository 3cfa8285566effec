//! No leak, by construction: a k-shot run over a bank built from the full split never uses a
//! part (CDP, second CDP, synthetic CDP, CIP) of an image outside its training set.
use deda_bank::{BankMeta, BankWriter, PartBank, PartDraft, Producer};
use deda_combine::{CipSource, CombineConfig, Decision};
use deda_core::{rng_for, ClassId, PartId, Stream};
use deda_loader::error::PartError;
use deda_loader::{
    Combiner, Loader, LoaderConfig, PartIndex, PartStore, SampleEntry, TrainingSet, VecSource,
};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

const CLASSES: u32 = 4;
const PER_CLASS: u32 = 9;
const K: u32 = 2;
const VARIANTS: u32 = 2;

fn producer(stage: &str) -> Producer {
    Producer {
        stage: stage.into(),
        config_hash: "0".into(),
        seed: 0,
        weights_hash: None,
    }
}

/// The full split (`CLASSES × PER_CLASS` images) with a bank holding a CDP, a CIP and
/// `VARIANTS` synthetic CDPs of every image; returns the full split's samples and the bank.
fn full_split(dir: &Path) -> (Vec<SampleEntry>, PartBank) {
    let names = (0..CLASSES).map(|c| format!("class{c}")).collect();
    let bank_dir = dir.join("bank");
    let mut w = BankWriter::open(&bank_dir, &BankMeta::new(names), None).unwrap();
    let mut samples = Vec::new();
    for c in 0..CLASSES {
        for j in 0..PER_CLASS {
            let id = format!("class{c}/img{j}.png");
            let path = dir.join(&id);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let img = RgbImage::from_fn(24 + j, 20 + c, |x, y| {
                Rgb([(x * 7) as u8, (y * 5) as u8, (c * 40 + j) as u8])
            });
            img.save(&path).unwrap();
            let draft = PartDraft {
                class: ClassId(c),
                source_image: id.clone(),
                bbox: None,
                producer: producer("decouple"),
            };
            let cdp = RgbaImage::from_fn(8 + j, 9, |x, _| Rgba([200, (x * 9) as u8, c as u8, 255]));
            let rec = w.put_cdp(draft.clone(), &cdp).unwrap();
            w.put_cip(draft, &img).unwrap();
            for v in 0..VARIANTS {
                let syn = RgbaImage::from_fn(8 + j, 9, |x, _| Rgba([v as u8, x as u8, 9, 255]));
                w.put_synthetic(&rec, v, producer("edit"), &syn).unwrap();
            }
            samples.push(SampleEntry {
                path,
                id,
                target: vec![(ClassId(c), 1.0)],
            });
        }
    }
    drop(w);
    (samples, PartBank::open(&bank_dir).unwrap())
}

/// A `K`-shot subset: `K` images per class chosen by a seeded draw.
fn k_shot(samples: &[SampleEntry], seed: u64) -> VecSource {
    let mut chosen = Vec::new();
    for c in 0..CLASSES {
        let of_class: Vec<&SampleEntry> = samples
            .iter()
            .filter(|s| s.target[0].0 == ClassId(c))
            .collect();
        let mut idx: Vec<usize> = (0..of_class.len()).collect();
        rand::seq::SliceRandom::shuffle(
            idx.as_mut_slice(),
            &mut rng_for(seed, Stream::Shuffle, &[u64::from(c)]),
        );
        chosen.extend(idx[..K as usize].iter().map(|&i| of_class[i].clone()));
    }
    VecSource {
        samples: chosen,
        num_classes: CLASSES as usize,
    }
}

/// Every part id of the bank whose source image is not in `train`.
fn foreign_parts(bank: &PartBank, train: &TrainingSet) -> BTreeSet<PartId> {
    bank.records()
        .iter()
        .filter(|r| !train.contains(&r.source_image))
        .map(|r| r.id.clone())
        .collect()
}

fn source_of_part(bank: &PartBank) -> HashMap<PartId, String> {
    bank.records()
        .iter()
        .map(|r| (r.id.clone(), r.source_image.clone()))
        .collect()
}

fn configs() -> Vec<CombineConfig> {
    [CipSource::OtherClass, CipSource::Any, CipSource::Own]
        .into_iter()
        .map(|cip_source| CombineConfig {
            p_aug: 1.0,
            p_syn: 0.5,
            p_mix: 0.7,
            cip_source,
            ..CombineConfig::default()
        })
        .collect()
}

#[test]
fn pool_holds_only_the_parts_of_the_training_images() {
    let dir = tempfile::tempdir().unwrap();
    let (full, bank) = full_split(dir.path());
    let bank = Arc::new(bank);
    let sub = k_shot(&full, 7);
    let train = TrainingSet::from_source(&sub);
    assert_eq!(train.len(), (K * CLASSES) as usize);
    let (combiner, summary) =
        Combiner::from_bank(Arc::clone(&bank), configs()[0].clone(), &sub).unwrap();
    assert_eq!(summary.cdps, (K * CLASSES) as usize);
    assert_eq!(summary.cips, (K * CLASSES) as usize);
    assert_eq!(summary.synthetic_cdps, (K * CLASSES * VARIANTS) as usize);
    assert_eq!(
        summary.excluded,
        ((PER_CLASS - K) * CLASSES * (2 + VARIANTS)) as usize
    );
    assert_eq!(summary.training_set_hash, train.hash());
    let origin = source_of_part(&bank);
    let pool = combiner.sampler.pool();
    for cdp in pool.cdps() {
        for id in std::iter::once(&cdp.id).chain(&cdp.synthetic) {
            assert!(train.contains(&origin[id]), "pool holds {id}");
        }
        if let Some(k) = cdp.own_cip {
            assert_eq!(origin[&pool.cips()[k].id], origin[&cdp.id]);
        }
    }
    for cip in pool.cips() {
        assert!(train.contains(&origin[&cip.id]), "pool holds {}", cip.id);
    }
    // Every training sample still finds its own CDP.
    assert!(combiner.cdp_of.iter().all(Option::is_some));
    // Another subset gives another pool hash; the same subset the same hash.
    let (_, again) = Combiner::from_bank(Arc::clone(&bank), configs()[0].clone(), &sub).unwrap();
    assert_eq!(again.parts_hash, summary.parts_hash);
    let other = k_shot(&full, 8);
    let (_, other) = Combiner::from_bank(Arc::clone(&bank), configs()[0].clone(), &other).unwrap();
    assert_ne!(other.parts_hash, summary.parts_hash);
    assert_ne!(other.training_set_hash, summary.training_set_hash);
}

#[test]
fn ten_thousand_draws_never_touch_a_foreign_part() {
    let dir = tempfile::tempdir().unwrap();
    let (full, bank) = full_split(dir.path());
    let bank = Arc::new(bank);
    let origin = source_of_part(&bank);
    for seed in [1_u64, 2, 3] {
        let sub = k_shot(&full, seed);
        let train = TrainingSet::from_source(&sub);
        let foreign = foreign_parts(&bank, &train);
        assert_eq!(
            foreign.len(),
            ((PER_CLASS - K) * CLASSES * (2 + VARIANTS)) as usize
        );
        for config in configs() {
            let (combiner, _) = Combiner::from_bank(Arc::clone(&bank), config, &sub).unwrap();
            let (mut layers, mut synthetic, mut second) = (0, 0, 0);
            for draw in 0..10_000_u64 {
                let i = (draw % sub.samples.len() as u64) as usize;
                let mut rng = rng_for(seed, Stream::Combine, &[draw]);
                let Decision::Combine(c) = combiner.sampler.sample(combiner.cdp_of[i], &mut rng)
                else {
                    panic!("p_aug = 1 with a full pool must combine");
                };
                assert!(!foreign.contains(&c.params.cip), "CIP {}", c.params.cip);
                assert!(train.contains(&origin[&c.params.cip]));
                for l in &c.params.layers {
                    assert!(!foreign.contains(&l.cdp), "CDP {}", l.cdp);
                    layers += 1;
                    synthetic += usize::from(l.synthetic);
                }
                second += usize::from(c.params.layers.len() > 1);
            }
            // The draws exercised every kind of part.
            assert!(
                synthetic > 1000 && second > 1000,
                "{layers} {synthetic} {second}"
            );
        }
    }
}

/// A store that records every part it decodes.
struct Recording {
    bank: Arc<PartBank>,
    seen: Mutex<BTreeSet<PartId>>,
}

impl PartStore for Recording {
    fn load_cdp(&self, id: &PartId) -> Result<RgbaImage, PartError> {
        self.seen.lock().unwrap().insert(id.clone());
        PartStore::load_cdp(self.bank.as_ref(), id)
    }
    fn load_cip(&self, id: &PartId) -> Result<RgbImage, PartError> {
        self.seen.lock().unwrap().insert(id.clone());
        PartStore::load_cip(self.bank.as_ref(), id)
    }
}

#[test]
fn the_loader_decodes_no_foreign_part_over_many_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let (full, bank) = full_split(dir.path());
    let bank = Arc::new(bank);
    let sub = k_shot(&full, 11);
    let train = TrainingSet::from_source(&sub);
    let foreign = foreign_parts(&bank, &train);
    let (mut combiner, _) =
        Combiner::from_bank(Arc::clone(&bank), configs()[1].clone(), &sub).unwrap();
    let store = Arc::new(Recording {
        bank: Arc::clone(&bank),
        seen: Mutex::new(BTreeSet::new()),
    });
    combiner.store = store.clone();
    let cfg = LoaderConfig {
        batch_size: 4,
        threads: 2,
        resize_short: 16,
        crop: 12,
        seed: 3,
        ..LoaderConfig::default()
    };
    let loader = Loader::new(cfg, Arc::new(sub.clone()), Some(combiner)).unwrap();
    let mut combined = 0;
    for e in 0..150 {
        for b in loader.epoch(e).unwrap() {
            combined += b.unwrap().combined.iter().filter(|&&c| c).count();
        }
    }
    assert!(combined >= 1000, "{combined} combinations");
    let seen = store.seen.lock().unwrap();
    let leaked: Vec<_> = seen.intersection(&foreign).collect();
    assert!(leaked.is_empty(), "foreign parts decoded: {leaked:?}");
    // It did decode synthetic CDPs, second CDPs and CIPs of the training images.
    assert!(seen.len() > (K * CLASSES * 3) as usize, "{}", seen.len());
}

#[test]
fn the_unfiltered_index_would_leak() {
    // The property above is not vacuous: the old pool (every bank record) holds foreign parts.
    let dir = tempfile::tempdir().unwrap();
    let (full, bank) = full_split(dir.path());
    let sub = k_shot(&full, 7);
    let foreign = foreign_parts(&bank, &TrainingSet::from_source(&sub));
    let all = PartIndex::from_records(bank.records());
    assert!(all
        .part_ids()
        .iter()
        .any(|id| foreign.contains(&PartId::from(*id))));
}

#[test]
fn an_empty_pool_is_an_error_naming_the_bank() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bank) = full_split(dir.path());
    let stranger = VecSource {
        samples: vec![SampleEntry {
            path: dir.path().join("elsewhere.png"),
            id: "elsewhere.png".into(),
            target: vec![(ClassId(0), 1.0)],
        }],
        num_classes: CLASSES as usize,
    };
    let err = match Combiner::from_bank(Arc::new(bank), configs()[0].clone(), &stranger) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an empty pool was accepted"),
    };
    assert!(
        err.contains("bank") && err.contains("1 training images"),
        "{err}"
    );
}

#[test]
fn an_epoch_that_combines_nothing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (full, bank) = full_split(dir.path());
    let sub = k_shot(&full, 7);
    let (mut combiner, _) =
        Combiner::from_bank(Arc::new(bank), configs()[0].clone(), &sub).unwrap();
    // As if the bank covered none of the samples: every draw finds no CDP.
    combiner.cdp_of = vec![None; sub.samples.len()];
    let cfg = LoaderConfig {
        batch_size: 4,
        resize_short: 16,
        crop: 12,
        ..LoaderConfig::default()
    };
    let loader = Loader::new(cfg, Arc::new(sub.clone()), Some(combiner)).unwrap();
    let items: Vec<_> = loader.epoch(0).unwrap().collect();
    let last = items.last().unwrap();
    let err = match last {
        Err(e) => e.to_string(),
        Ok(_) => panic!("the epoch must end in an error"),
    };
    assert!(err.contains("combined none of the 8 samples"), "{err}");
    assert!(items[..items.len() - 1].iter().all(Result::is_ok));
}
