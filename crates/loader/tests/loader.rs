//! The loader end to end on a tiny data set and bank written to a temporary folder.
use deda_bank::{BankMeta, BankWriter, PartBank, PartDraft, Producer};
use deda_combine::{CombineConfig, CombineSampler};
use deda_core::ClassId;
use deda_loader::{Batch, Combiner, Loader, LoaderConfig, PartIndex, SampleEntry, VecSource};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use std::path::Path;
use std::sync::Arc;

const CLASSES: u32 = 3;
const SAMPLES: u32 = 18;

fn producer() -> Producer {
    Producer {
        stage: "test".into(),
        config_hash: "0".into(),
        seed: 0,
        weights_hash: None,
    }
}

/// Writes the images and a bank (CDP + CIP for every sample but the last two) under `dir`.
fn fixture(dir: &Path) -> (VecSource, PartBank) {
    let names = (0..CLASSES).map(|c| format!("c{c}")).collect();
    let bank_dir = dir.join("bank");
    let mut w = BankWriter::open(&bank_dir, &BankMeta::new(names), None).unwrap();
    let mut samples = Vec::new();
    for i in 0..SAMPLES {
        let class = ClassId(i % CLASSES);
        let id = format!("img{i}.png");
        let path = dir.join(&id);
        let img = RgbImage::from_fn(40 + i, 30 + 2 * i, |x, y| {
            Rgb([(x * 5) as u8, (y * 3) as u8, (i * 9) as u8])
        });
        img.save(&path).unwrap();
        if i < SAMPLES - 2 {
            let draft = PartDraft {
                class,
                source_image: id.clone(),
                bbox: None,
                producer: producer(),
            };
            let cdp =
                RgbaImage::from_fn(10 + i, 12, |x, _| Rgba([200, (x * 10) as u8, i as u8, 255]));
            w.put_cdp(draft.clone(), &cdp).unwrap();
            w.put_cip(draft, &img).unwrap();
        }
        samples.push(SampleEntry {
            path,
            id,
            target: vec![(class, 1.0)],
        });
    }
    let source = VecSource {
        samples,
        num_classes: CLASSES as usize,
    };
    (source, PartBank::open(&bank_dir).unwrap())
}

fn config(threads: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size: 4,
        threads,
        prefetch_batches: 2,
        resize_short: 32,
        crop: 24,
        seed: 5,
        ..LoaderConfig::default()
    }
}

fn loader(source: &VecSource, bank: &PartBank, cfg: LoaderConfig) -> Loader {
    let index = PartIndex::from_records(bank.records());
    let cdp_of = index.cdps_for(source);
    let combine = CombineConfig {
        p_aug: 0.7,
        ..CombineConfig::default()
    };
    let combiner = Combiner {
        store: Arc::new(bank.clone()),
        sampler: CombineSampler::new(combine, index.pool).unwrap(),
        cdp_of,
    };
    Loader::new(cfg, Arc::new(source.clone()), Some(combiner)).unwrap()
}

fn epoch(l: &Loader, e: u64) -> Vec<Batch> {
    l.epoch(e).unwrap().collect::<Result<_, _>>().unwrap()
}

#[test]
fn batches_are_identical_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let (source, bank) = fixture(dir.path());
    let one = epoch(&loader(&source, &bank, config(1)), 3);
    let three = epoch(&loader(&source, &bank, config(3)), 3);
    assert_eq!(one, three);
    assert_eq!(one.len(), 5);
    let n: usize = one.iter().map(|b| b.n).sum();
    assert_eq!(n, SAMPLES as usize);
    let combined = one.iter().flat_map(|b| &b.combined).filter(|&&c| c).count();
    assert!(combined > 3 && combined < 18, "{combined} combined");
    for b in &one {
        assert_eq!(b.images.len(), b.n * 3 * 24 * 24);
        for row in b.targets.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
        }
    }
    let other_epoch = epoch(&loader(&source, &bank, config(2)), 4);
    assert_ne!(
        one[0].indices, other_epoch[0].indices,
        "shuffle ignores the epoch"
    );
}

#[test]
fn bad_samples_are_skipped_counted_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (mut source, bank) = fixture(dir.path());
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"not an image").unwrap();
    // The last sample has no CDP, so it is always read from its (now broken) file.
    let last = source.samples.last_mut().unwrap();
    last.path = broken;
    last.id = "broken-sample".into();
    let tolerant = LoaderConfig {
        max_bad_fraction: 0.1,
        ..config(2)
    };
    let l = loader(&source, &bank, tolerant);
    let mut it = l.epoch(0).unwrap();
    let n: usize = it.by_ref().map(|b| b.unwrap().n).sum();
    assert_eq!(n, SAMPLES as usize - 1);
    assert_eq!(it.stats().bad, 1);
    assert!(it.stats().last_bad[0].contains("broken-sample"));
    let strict = loader(&source, &bank, config(2));
    let err = strict
        .epoch(0)
        .unwrap()
        .find_map(|b| b.err())
        .expect("the strict budget must fail the epoch");
    assert!(err.to_string().contains("broken-sample"), "{err}");
}

#[test]
fn a_final_training_batch_of_one_sample_is_dropped_and_evaluation_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut source, _) = fixture(dir.path());
    source.samples.truncate(17); // 4 + 4 + 4 + 4 + 1
    let source = Arc::new(source);
    let train = Loader::new(config(2), Arc::clone(&source) as _, None).unwrap();
    let batches = epoch(&train, 0);
    assert_eq!(train.num_batches(), 4);
    assert_eq!(batches.iter().map(|b| b.n).collect::<Vec<_>>(), [4; 4]);
    // The left-out sample is the last of the shuffled order, a different one each epoch.
    let order = train.order(0);
    let seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(seen, order[..16]);
    let eval = Loader::new(config(2).for_eval(), source, None).unwrap();
    let sizes: Vec<usize> = epoch(&eval, 0).iter().map(|b| b.n).collect();
    assert_eq!(sizes, [4, 4, 4, 4, 1]);
}

#[test]
fn eval_config_is_centre_cropped_unshuffled_and_real() {
    let dir = tempfile::tempdir().unwrap();
    let (source, _) = fixture(dir.path());
    let l = Loader::new(config(2).for_eval(), Arc::new(source), None).unwrap();
    let batches = epoch(&l, 0);
    let idx: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(idx, (0..SAMPLES as usize).collect::<Vec<_>>());
    assert!(batches.iter().all(|b| b.combined.iter().all(|c| !c)));
    assert_eq!(
        epoch(&l, 0),
        epoch(&l, 1),
        "eval output depends on the epoch"
    );
}

#[test]
fn part_index_links_each_cdp_to_its_own_cip_and_home() {
    let dir = tempfile::tempdir().unwrap();
    let names = vec!["a".to_string(), "b".to_string()];
    let mut w = BankWriter::open(dir.path(), &BankMeta::new(names), None).unwrap();
    for (i, with_box) in [(0u32, true), (1, false)] {
        let draft = PartDraft {
            class: ClassId(i),
            source_image: format!("img{i}.png"),
            bbox: with_box.then_some(deda_core::BBox {
                x: 10,
                y: 5,
                w: 10,
                h: 10,
            }),
            producer: producer(),
        };
        w.put_cdp(
            draft.clone(),
            &RgbaImage::from_pixel(10, 10, Rgba([9, 9, 9, 255])),
        )
        .unwrap();
        w.put_cip(draft, &RgbImage::new(40, 20)).unwrap();
    }
    drop(w);
    let bank = PartBank::open(dir.path()).unwrap();
    let index = PartIndex::from_records(bank.records());
    let pool = &index.pool;
    for (sample, class) in [("img0.png", 0), ("img1.png", 1)] {
        let cdp = &pool.cdps()[index.cdp_of_sample[sample]];
        let cip = &pool.cips()[cdp.own_cip.expect("own CIP linked")];
        assert_eq!((cdp.class.0, cip.class.0), (class, class));
    }
    let home = pool.cdps()[index.cdp_of_sample["img0.png"]]
        .home
        .expect("home from the CIP's box");
    assert_eq!(home.scale, 0.5);
    assert_eq!(home.center, (0.25, 0.5));
    assert!(pool.cdps()[index.cdp_of_sample["img1.png"]].home.is_none());
}

#[test]
fn combination_psnr_is_reproducible_and_covers_every_sample_with_a_cdp() {
    use deda_loader::diversity::{combination_psnrs, edit_psnrs, summarise};
    let dir = tempfile::tempdir().unwrap();
    let (source, bank) = fixture(dir.path());
    let index = PartIndex::from_records(bank.records());
    let always = CombineConfig {
        p_aug: 1.0,
        ..CombineConfig::default()
    };
    let combiner = Combiner {
        store: Arc::new(bank.clone()),
        cdp_of: index.cdps_for(&source),
        sampler: CombineSampler::new(always, index.pool.clone()).unwrap(),
    };
    let a = combination_psnrs(&source, &combiner, 32, 2, 7).unwrap();
    assert_eq!(a.len(), 2 * (SAMPLES as usize - 2));
    assert!(a.iter().all(|v| v.is_finite() && *v > 0.0), "{a:?}");
    assert_eq!(a, combination_psnrs(&source, &combiner, 32, 2, 7).unwrap());
    assert_ne!(a, combination_psnrs(&source, &combiner, 32, 2, 8).unwrap());
    let s = summarise(&a);
    assert!(
        s.mean_db.unwrap() > 3.0 && s.mean_db.unwrap() < 40.0,
        "{s:?}"
    );
    // The fixture bank has no synthetic edits.
    assert!(edit_psnrs(&bank, &index.pool).unwrap().is_empty());
}

#[test]
fn recycled_buffers_give_byte_identical_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (mut source, bank) = fixture(dir.path());
    // A failed sample (left out of its batch) and padded crops (black borders) in every epoch.
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"not an image").unwrap();
    let last = source.samples.last_mut().unwrap();
    last.path = broken;
    last.id = "broken-sample".into();
    let cfg = |threads| LoaderConfig {
        max_bad_fraction: 0.1,
        crop_padding: 6,
        ..config(threads)
    };
    let fresh = loader(&source, &bank, cfg(2));
    let expected: Vec<Vec<Batch>> = (0..4).map(|e| epoch(&fresh, e)).collect();
    assert_eq!(fresh.reused_buffers(), 0, "nothing was handed back");
    for threads in [1, 3] {
        let l = loader(&source, &bank, cfg(threads));
        for (e, want) in expected.iter().enumerate() {
            let mut got = Vec::new();
            for b in l.epoch(e as u64).unwrap() {
                let b = b.unwrap();
                got.push(b.clone());
                l.recycle(b);
            }
            assert_eq!(&got, want, "epoch {e}, {threads} threads");
            let n: usize = got.iter().map(|b| b.n).sum();
            assert_eq!(n, SAMPLES as usize - 1, "the broken sample is left out");
            for (g, w) in got.iter().zip(want) {
                let bits = |b: &Batch| b.images.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(g), bits(w), "epoch {e}: bytes differ");
            }
        }
        // 20 batches; at most `threads + prefetch_batches + 1` buffers live at once, and an
        // epoch's end may drop one beyond the pool's bound: the rest are recycled buffers.
        let reused = l.reused_buffers();
        let in_flight = threads as u64 + 2;
        assert!(
            reused + in_flight + 1 + 4 >= 20,
            "{threads} threads: {reused} reused"
        );
        assert!(reused > 0);
    }
}

#[test]
fn single_samples_are_the_batches_slots_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (source, bank) = fixture(dir.path());
    let cfg = LoaderConfig {
        crop_padding: 4,
        rand_augment: Some(deda_loader::RandAugmentConfig::default()),
        ..config(2)
    };
    for cfg in [config(2), cfg] {
        let l = loader(&source, &bank, cfg.clone());
        let mut reader = l.sample_reader();
        assert_eq!((reader.len(), reader.side()), (SAMPLES as usize, 24));
        let norm = |b: u8, c: usize| (f32::from(b) / 255.0 - cfg.mean[c]) / cfg.std[c];
        let (mut f, mut u) = (vec![0f32; 3 * 24 * 24], vec![0u8; 3 * 24 * 24]);
        let mut combined = 0;
        // Epoch 1 read in reverse order: only (seed, epoch, index) matters.
        for b in epoch(&l, 1).iter().rev() {
            for k in (0..b.n).rev() {
                let i = b.indices[k];
                let info = reader.read_f32(i, 1, &mut f).unwrap();
                let slot = &b.images[k * f.len()..(k + 1) * f.len()];
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&f), bits(slot), "sample {i}");
                assert_eq!(info.target, b.targets[k * 3..(k + 1) * 3], "sample {i}");
                assert_eq!(info.combined, b.combined[k]);
                combined += usize::from(info.combined);
                let info_u8 = reader.read_u8(i, 1, &mut u).unwrap();
                assert_eq!(info_u8, info);
                let plane = 24 * 24;
                assert!(u
                    .iter()
                    .enumerate()
                    .all(|(j, &v)| norm(v, j / plane) == f[j]));
            }
        }
        assert!(combined > 0, "some samples were combinations");
        assert_eq!(reader.stats().samples, 2 * SAMPLES as usize);
        let other_epoch = reader.read_f32(0, 2, &mut f).map(|_| f.clone()).unwrap();
        reader.read_f32(0, 1, &mut f).unwrap();
        assert_ne!(other_epoch, f, "another epoch draws another crop");
    }
}

#[test]
fn single_sample_errors_name_the_index_or_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut source, bank) = fixture(dir.path());
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"not an image").unwrap();
    // The last sample has no parts, so it is always read from its file.
    source.samples.last_mut().unwrap().path = broken;
    let l = loader(&source, &bank, config(1));
    let mut reader = l.sample_reader();
    let mut out = vec![0u8; 3 * 24 * 24];
    let e = reader.read_u8(SAMPLES as usize, 0, &mut out).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    let e = reader.read_u8(0, 0, &mut out[1..]).unwrap_err();
    assert!(e.to_string().contains("1728"), "{e}");
    let e = reader
        .read_u8(SAMPLES as usize - 1, 0, &mut out)
        .unwrap_err();
    assert!(e.to_string().contains("broken.png"), "{e}");
}
