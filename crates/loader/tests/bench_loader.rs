//! `bench_loader` on a tiny data set and bank: it counts what the loader delivers.
use deda_bank::{BankMeta, BankWriter, PartBank, PartDraft, Producer};
use deda_combine::{CombineConfig, CombineSampler};
use deda_core::ClassId;
use deda_loader::bench::bench_loader;
use deda_loader::{Combiner, LoaderConfig, PartIndex, SampleEntry, SampleSource, VecSource};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use std::path::Path;
use std::sync::Arc;

const SAMPLES: u32 = 10;

/// Ten images of two classes, each with a CDP and a CIP in a bank under `dir`.
fn fixture(dir: &Path) -> (VecSource, PartBank) {
    let bank_dir = dir.join("bank");
    let meta = BankMeta::new(vec!["a".into(), "b".into()]);
    let mut w = BankWriter::open(&bank_dir, &meta, None).unwrap();
    let mut samples = Vec::new();
    for i in 0..SAMPLES {
        let class = ClassId(i % 2);
        let id = format!("img{i}.png");
        let img = RgbImage::from_fn(48, 40, |x, y| Rgb([(x * 5) as u8, (y * 3) as u8, i as u8]));
        img.save(dir.join(&id)).unwrap();
        let draft = PartDraft {
            class,
            source_image: id.clone(),
            bbox: None,
            producer: Producer {
                stage: "test".into(),
                config_hash: "0".into(),
                seed: 0,
                weights_hash: None,
            },
        };
        let cdp = RgbaImage::from_fn(12, 14, |x, _| Rgba([200, (x * 10) as u8, 7, 255]));
        w.put_cdp(draft.clone(), &cdp).unwrap();
        w.put_cip(draft, &img).unwrap();
        samples.push(SampleEntry {
            path: dir.join(&id),
            id,
            target: vec![(class, 1.0)],
        });
    }
    let source = VecSource {
        samples,
        num_classes: 2,
    };
    (source, PartBank::open(&bank_dir).unwrap())
}

fn config() -> LoaderConfig {
    LoaderConfig {
        batch_size: 4,
        threads: 2,
        resize_short: 36,
        crop: 32,
        ..LoaderConfig::default()
    }
}

#[test]
fn counts_every_image_of_every_epoch_and_the_combinations() {
    let dir = tempfile::tempdir().unwrap();
    let (source, bank) = fixture(dir.path());
    let index = PartIndex::from_records(bank.records());
    let combiner = Combiner {
        cdp_of: index.cdps_for(&source),
        sampler: CombineSampler::new(
            CombineConfig {
                p_aug: 1.0,
                p_syn: 0.0,
                ..CombineConfig::default()
            },
            index.pool,
        )
        .unwrap(),
        store: Arc::new(bank),
    };
    let source: Arc<dyn SampleSource> = Arc::new(source);
    let r = bench_loader(config(), source, Some(combiner), 2, None, true).unwrap();
    assert_eq!((r.op, r.crop, r.threads, r.epochs), ("loader", 32, 2, 2));
    // 10 samples in batches of 4: 3 batches per epoch, the last one short.
    assert_eq!((r.batches, r.images, r.bad), (6, 20, 0));
    assert_eq!(r.combined, 20, "p_aug = 1 combines every sample");
    assert!(r.images_per_s > 0.0 && r.seconds > 0.0);
    assert!((r.per_core_images_per_s - r.images_per_s / 2.0).abs() < 1e-9);
    // Epoch 0's buffers were handed back and epoch 1 built its three batches in them; a batch of
    // epoch 0 may be built in one too when the consumer hands it back before a worker starts that
    // batch (timing), so 3 to 5 of the 6 batches reuse a buffer, never all (the first is new).
    assert!(r.recycle);
    assert!(
        (3..=5).contains(&r.reused_buffers),
        "reused {} of 6 batches' buffers",
        r.reused_buffers
    );
}

#[test]
fn stops_after_max_batches_and_rejects_zero_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let (source, _) = fixture(dir.path());
    let source: Arc<dyn SampleSource> = Arc::new(source);
    let r = bench_loader(config(), Arc::clone(&source), None, 5, Some(4), false).unwrap();
    // Epoch 0 gives 3 batches, epoch 1 the fourth; nothing is combined without a combiner.
    assert_eq!((r.batches, r.images, r.epochs, r.combined), (4, 14, 2, 0));
    assert_eq!(
        (r.recycle, r.reused_buffers),
        (false, 0),
        "nothing handed back"
    );
    assert!(bench_loader(config(), source, None, 0, None, true).is_err());
}
