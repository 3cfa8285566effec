//! Helpers shared by the integration tests: a small class list and synthetic images.
#![allow(dead_code)]
use deda_bank::{BankMeta, BankWriter, PartDraft, PartRecord, Producer};
use deda_core::{BBox, ClassId};
use image::{Rgb, RgbImage, Rgba, RgbaImage};

pub fn meta() -> BankMeta {
    BankMeta::new(vec!["cat".into(), "dog".into(), "bird".into()])
}

pub fn producer() -> Producer {
    Producer {
        stage: "decouple".into(),
        config_hash: "0123456789abcdef".into(),
        seed: 7,
        weights_hash: Some("feedbeef".into()),
    }
}

/// Sample `k`: id and class.
pub fn sample(k: u32) -> (String, ClassId) {
    (format!("train/c{}/img {k}.jpg", k % 3), ClassId(k % 3))
}

pub fn draft(k: u32) -> PartDraft {
    let (source_image, class) = sample(k);
    PartDraft {
        class,
        source_image,
        bbox: Some(BBox {
            x: k,
            y: 2,
            w: 5 + k % 3,
            h: 4,
        }),
        producer: producer(),
    }
}

/// A CDP whose left column is transparent; the rest is a pattern depending on `k`.
pub fn cdp_img(k: u32) -> RgbaImage {
    RgbaImage::from_fn(5 + k % 3, 4, |x, y| {
        let a = if x == 0 { 0 } else { 255 };
        Rgba([(x * 40 + k) as u8, (y * 50) as u8, (k * 13) as u8, a])
    })
}

pub fn cip_img(k: u32) -> RgbImage {
    RgbImage::from_fn(16, 12, |x, y| {
        Rgb([(x * 15) as u8, (y * 20) as u8, (k * 31) as u8])
    })
}

/// Stores CDP and CIP of sample `k`.
pub fn put_sample(w: &mut BankWriter, k: u32) -> (PartRecord, PartRecord) {
    let cdp = w.put_cdp(draft(k), &cdp_img(k)).unwrap();
    let cip = w.put_cip(draft(k), &cip_img(k)).unwrap();
    (cdp, cip)
}

/// The producer of the synthetic CDPs [`put_syn`] stores.
pub fn syn_producer() -> Producer {
    let mut p = producer();
    p.stage = "edit:test".into();
    p
}

/// Stores synthetic variant `v` of a CDP.
pub fn put_syn(w: &mut BankWriter, cdp: &PartRecord, v: u32) -> PartRecord {
    let p = syn_producer();
    let img = RgbaImage::from_fn(6, 6, |x, y| {
        Rgba([x as u8 * 30, y as u8 * 30, v as u8, 200])
    });
    w.put_synthetic(cdp, v, p, &img).unwrap()
}
