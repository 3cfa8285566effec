//! Same seed, same bytes: whatever the thread count; and compose never panics.
use deda_combine::{
    compose, CdpEntry, CipEntry, CombineConfig, CombineParams, CombineSampler, Composite,
    Compositor, Decision, LayerParams, PartPool,
};
use deda_core::{rng_for, ClassId, Stream};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use proptest::prelude::*;
use rayon::prelude::*;

fn blob(w: u32, h: u32, seed: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.5);
        let r = (fx * fx + fy * fy).sqrt();
        let a = ((0.5 - r) * 4.0 * 255.0).clamp(0.0, 255.0) as u8;
        Rgba([(x * 7 + seed) as u8, (y * 5) as u8, (seed * 31) as u8, a])
    })
}

fn pool() -> PartPool {
    let cdps = (0..6)
        .map(|i| CdpEntry {
            id: format!("cdp/{i}").as_str().into(),
            class: ClassId(i % 3),
            synthetic: (0..i)
                .map(|k| format!("syn/{i}-{k}").as_str().into())
                .collect(),
            ..Default::default()
        })
        .collect();
    let cips = (0..6)
        .map(|i| CipEntry {
            id: format!("cip/{i}").as_str().into(),
            class: ClassId(i % 3),
        })
        .collect();
    PartPool::new(cdps, cips)
}

struct Images {
    cdps: Vec<RgbaImage>,
    cip: RgbImage,
}

fn images() -> Images {
    Images {
        cdps: (0..6).map(|i| blob(60 + 13 * i, 90 - 7 * i, i)).collect(),
        cip: RgbImage::from_fn(64, 48, |x, y| Rgb([x as u8 * 3, y as u8 * 5, 77])),
    }
}

fn cdp_index(id: &str) -> usize {
    id.rsplit(['/', '-'])
        .find_map(|s| s.parse().ok())
        .unwrap_or(0)
        % 6
}

fn sample_and_compose(
    s: &CombineSampler,
    imgs: &Images,
    i: u64,
    c: &mut Compositor,
) -> Option<Composite> {
    let mut rng = rng_for(42, Stream::Combine, &[0, i]);
    match s.sample(Some(i as usize % 6), &mut rng) {
        Decision::Real(_) => None,
        Decision::Combine(comb) => {
            let cdps: Vec<&RgbaImage> = comb
                .params
                .layers
                .iter()
                .map(|l| &imgs.cdps[cdp_index(&l.cdp.0)])
                .collect();
            Some(compose(&imgs.cip, &cdps, &comb.params, 96, 80, c).unwrap())
        }
    }
}

#[test]
fn same_seed_same_bytes_sequential_or_parallel() {
    let cfg = CombineConfig {
        p_aug: 1.0,
        ..CombineConfig::default()
    };
    let s = CombineSampler::new(cfg, pool()).unwrap();
    let imgs = images();
    let mut c = Compositor::new();
    let seq: Vec<_> = (0..64)
        .map(|i| sample_and_compose(&s, &imgs, i, &mut c))
        .collect();
    let again: Vec<_> = (0..64)
        .map(|i| sample_and_compose(&s, &imgs, i, &mut c))
        .collect();
    let par: Vec<_> = (0..64u64)
        .into_par_iter()
        .map_init(Compositor::new, |c, i| sample_and_compose(&s, &imgs, i, c))
        .collect();
    assert_eq!(seq, again);
    assert_eq!(seq, par);
    let two_layers = seq
        .iter()
        .flatten()
        .filter(|c| c.visible.len() == 2)
        .count();
    assert!(
        two_layers > 10 && two_layers < 54,
        "p_mix not near 0.5: {two_layers}/64"
    );
}

fn arb_params() -> impl Strategy<Value = (CombineParams, Vec<(u32, u32)>)> {
    let layer = (
        1u32..300,
        1u32..300,
        0.001f32..4.0,
        -0.5f32..1.5,
        -0.5f32..1.5,
        any::<bool>(),
        -360f32..360.0,
        0u32..3,
    );
    prop::collection::vec(layer, 1..4).prop_map(|ls| {
        let sizes = ls.iter().map(|l| (l.0, l.1)).collect();
        let layers = ls
            .into_iter()
            .map(|(_, _, scale, cx, cy, flip, rot, class)| LayerParams {
                cdp: "cdp/x".into(),
                class: ClassId(class),
                synthetic: false,
                scale,
                center: (cx, cy),
                flip,
                rotation_deg: rot,
            })
            .collect();
        (
            CombineParams {
                cip: "cip/x".into(),
                layers,
            },
            sizes,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn compose_never_panics_and_weights_sum_to_one(
        (params, sizes) in arb_params(),
        out_w in 1u32..200,
        out_h in 1u32..200,
        cip_w in 1u32..120,
        cip_h in 1u32..120,
    ) {
        let cdps: Vec<RgbaImage> = sizes.iter().enumerate().map(|(i, &(w, h))| blob(w, h, i as u32)).collect();
        let refs: Vec<&RgbaImage> = cdps.iter().collect();
        let cip = RgbImage::from_pixel(cip_w, cip_h, Rgb([1, 2, 3]));
        let c = compose(&cip, &refs, &params, out_w, out_h, &mut Compositor::new()).unwrap();
        prop_assert_eq!(c.image.dimensions(), (out_w, out_h));
        let sum: f32 = c.weights.iter().map(|w| w.1).sum();
        prop_assert!((sum - 1.0).abs() < 1e-5, "weights {:?}", c.weights);
        prop_assert!(c.weights.iter().all(|w| w.1 >= 0.0));
        prop_assert_eq!(c.visible.len(), params.layers.len());
    }
}
