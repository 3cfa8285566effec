//! Pascal VOC with its ground-truth `SegmentationClass` masks: every labelled class of an image
//! becomes its own CDP (its class's pixels as alpha), the image one CIP with every object
//! filled; an image outside the segmentation subset is kept real-only (nothing found).
#[path = "common/tiny_voc.rs"]
mod tiny_voc;

use deda_bank::PartBank;
use deda_core::{ClassId, PartKind};
use deda_data::{DataKind, DataSpec};
use deda_decouple::{decouple_split, ground_truth_segmenter, BankTarget};

#[test]
fn voc_ground_truth_gives_one_cdp_per_image_and_class_and_one_cip_per_image() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("VOC2007");
    tiny_voc::write(&root);
    let spec = DataSpec::new(DataKind::Voc2007, &root);
    let train = spec.read().unwrap().train;
    assert_eq!(train.len(), 5);
    let masks = spec.ground_truth_masks().expect("VOC ships class masks");
    let mut seg = ground_truth_segmenter(masks);
    let bank_dir = dir.path().join("bank");
    let report = decouple_split(
        &train,
        &mut seg,
        None,
        &BankTarget::new(&bank_dir),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.processed, 4, "{}", report.summary());
    assert_eq!(report.nothing_found, ["JPEGImages/000005.jpg"]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let bank = PartBank::open(&bank_dir).unwrap();
    let images = tiny_voc::train_images();
    for (id, objects) in &images[..4] {
        let sample = format!("JPEGImages/{id}.jpg");
        let cdps: Vec<_> = bank.cdps_of_source(&sample).collect();
        let mut want: Vec<ClassId> = objects.iter().map(|(c, _)| ClassId(*c as u32)).collect();
        want.sort();
        let got: Vec<ClassId> = cdps.iter().map(|r| r.class).collect();
        assert_eq!(got, want, "{sample}: one CDP per labelled class");
        for r in &cdps {
            let (_, b) = objects
                .iter()
                .find(|(c, _)| *c as u32 == r.class.0)
                .unwrap();
            let bbox = r.bbox.unwrap();
            assert_eq!(
                (bbox.x, bbox.y, bbox.x + bbox.w, bbox.y + bbox.h),
                *b,
                "{sample} {}: the CDP is its class's box",
                r.class
            );
            // The opaque pixels are the object's colour (on average: JPEG blurs the edges).
            let cdp = bank.load_cdp(&r.id).unwrap();
            let colour = tiny_voc::object_colour(r.class.index());
            let opaque: Vec<_> = cdp.pixels().filter(|p| p.0[3] == 255).collect();
            assert_eq!(opaque.len() as u32, bbox.w * bbox.h, "{sample}: a full box");
            for k in 0..3 {
                let mean =
                    opaque.iter().map(|p| f64::from(p.0[k])).sum::<f64>() / opaque.len() as f64;
                assert!(
                    (mean - f64::from(colour[k])).abs() < 12.0,
                    "{sample} {}: channel {k} mean {mean} vs {colour:?}",
                    r.class
                );
            }
        }
        let cip = bank.cip_of_source(&sample).expect("one CIP per image");
        let img = bank.load_cip(&cip.id).unwrap();
        // No object colour is left in the CIP: both classes' holes were filled.
        for (_, b) in objects {
            let (cx, cy) = ((b.0 + b.2) / 2, (b.1 + b.3) / 2);
            let p = img.get_pixel(cx, cy).0;
            assert!(
                p[0] < 180,
                "{sample}: object left in the CIP at ({cx}, {cy}): {p:?}"
            );
        }
    }
    let cips = bank
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::Cip)
        .count();
    let cdps = bank
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::Cdp)
        .count();
    assert_eq!((cips, cdps), (4, 8));
}
