//! Behaviour of the sampler and a golden pin of its draws.
use deda_combine::{
    CdpEntry, CdpPlacement, CipEntry, CipSource, CombineConfig, CombineSampler, Decision, Home,
    PartPool, RealReason,
};
use deda_core::{rng_for, ClassId, Stream};

fn pool(classes: u32, syn: usize) -> PartPool {
    let cdps = (0..3 * classes)
        .map(|i| CdpEntry {
            id: format!("cdp/{i}").as_str().into(),
            class: ClassId(i % classes),
            synthetic: (0..syn)
                .map(|k| format!("syn/{i}-{k}").as_str().into())
                .collect(),
            ..Default::default()
        })
        .collect();
    let cips = (0..2 * classes)
        .map(|i| CipEntry {
            id: format!("cip/{i}").as_str().into(),
            class: ClassId(i % classes),
        })
        .collect();
    PartPool::new(cdps, cips)
}

fn sampler(cfg: CombineConfig, pool: PartPool) -> CombineSampler {
    CombineSampler::new(cfg, pool).unwrap()
}

fn all_decisions(s: &CombineSampler, n: u64) -> Vec<Decision> {
    (0..n)
        .map(|i| {
            let own = (i as usize) % s.pool().cdps().len();
            s.sample(Some(own), &mut rng_for(9, Stream::Combine, &[1, i]))
        })
        .collect()
}

#[test]
fn frequencies_follow_the_probabilities_and_classes_differ() {
    let s = sampler(CombineConfig::default(), pool(4, 3));
    let ds = all_decisions(&s, 4000);
    let combined: Vec<_> = ds
        .iter()
        .filter_map(|d| match d {
            Decision::Combine(c) => Some(c),
            Decision::Real(_) => None,
        })
        .collect();
    let frac = |n: usize, d: usize| n as f64 / d as f64;
    assert!((frac(combined.len(), 4000) - 0.5).abs() < 0.03);
    let mixed = combined
        .iter()
        .filter(|c| c.params.layers.len() == 2)
        .count();
    assert!((frac(mixed, combined.len()) - 0.5).abs() < 0.04);
    let layers: Vec<_> = combined.iter().flat_map(|c| &c.params.layers).collect();
    let syn = layers.iter().filter(|l| l.synthetic).count();
    assert!((frac(syn, layers.len()) - 0.25).abs() < 0.03);
    for c in &combined {
        let own = c.params.layers[0].class;
        let cip_class: u32 = c.params.cip.0[4..].parse::<u32>().unwrap() % 4;
        assert_ne!(ClassId(cip_class), own, "CIP from the sample's own class");
        assert!(!c.cip_fallback);
        if let Some(second) = c.params.layers.get(1) {
            assert_ne!(second.class, own, "second CDP from the same class");
        }
        for l in &c.params.layers {
            assert!(l.synthetic == l.cdp.0.starts_with("syn/"));
            assert!((0.35..=0.85).contains(&l.scale));
            assert!(l.rotation_deg.abs() <= 15.0);
        }
    }
}

#[test]
fn missing_parts_keep_the_sample_real_or_fall_back() {
    let always = CombineConfig {
        p_aug: 1.0,
        p_mix: 1.0,
        ..CombineConfig::default()
    };
    let s = sampler(always.clone(), pool(1, 0));
    let mut rng = rng_for(0, Stream::Combine, &[0, 0]);
    assert_eq!(s.sample(None, &mut rng), Decision::Real(RealReason::NoCdp));
    match s.sample(Some(0), &mut rng) {
        Decision::Combine(c) => {
            assert!(
                c.cip_fallback,
                "one class only: the CIP must be a counted fallback"
            );
            assert!(c.mix_unavailable);
            assert_eq!(c.params.layers.len(), 1);
        }
        d => panic!("expected a combination, got {d:?}"),
    }
    let no_cips = PartPool::new(pool(2, 0).cdps().to_vec(), vec![]);
    let s = sampler(always, no_cips);
    assert_eq!(
        s.sample(Some(0), &mut rng),
        Decision::Real(RealReason::NoCip)
    );
    let never = sampler(
        CombineConfig {
            p_aug: 0.0,
            ..CombineConfig::default()
        },
        pool(3, 1),
    );
    assert!(all_decisions(&never, 200)
        .iter()
        .all(|d| *d == Decision::Real(RealReason::NotDrawn)));
}

/// A pool where CDP `i` comes from the image of CIP `i` and sits at a known home, except the
/// last CDP, whose home is unknown.
fn pool_with_homes(classes: u32) -> PartPool {
    let n = 3 * classes as usize;
    let cdps = (0..n)
        .map(|i| CdpEntry {
            id: format!("cdp/{i}").as_str().into(),
            class: ClassId(i as u32 % classes),
            synthetic: vec![format!("syn/{i}").as_str().into()],
            own_cip: Some(i),
            home: (i + 1 < n).then_some(Home {
                scale: 0.1 + i as f32 / 100.0,
                center: (0.3, 0.6),
            }),
        })
        .collect();
    let cips = (0..n)
        .map(|i| CipEntry {
            id: format!("cip/{i}").as_str().into(),
            class: ClassId(i as u32 % classes),
        })
        .collect();
    PartPool::new(cdps, cips)
}

fn combinations(
    cfg: CombineConfig,
    pool: PartPool,
    n: u64,
) -> Vec<(usize, deda_combine::Combination)> {
    let s = sampler(cfg, pool);
    all_decisions(&s, n)
        .into_iter()
        .enumerate()
        .filter_map(|(i, d)| match d {
            Decision::Combine(c) => Some((i % s.pool().cdps().len(), c)),
            Decision::Real(_) => None,
        })
        .collect()
}

fn cip_index(c: &deda_combine::Combination) -> usize {
    c.params.cip.0[4..].parse().unwrap()
}

#[test]
fn cip_source_own_keeps_the_background_and_any_replaces_it() {
    let always = CombineConfig {
        p_aug: 1.0,
        ..CombineConfig::default()
    };
    let own = CombineConfig {
        cip_source: CipSource::Own,
        ..always.clone()
    };
    for (i, c) in combinations(own, pool_with_homes(3), 300) {
        assert_eq!(cip_index(&c), i, "own CIP expected");
        assert!(!c.cip_fallback);
    }
    let any = CombineConfig {
        cip_source: CipSource::Any,
        ..always.clone()
    };
    let got = combinations(any, pool_with_homes(3), 600);
    let mut same_class = 0;
    for (i, c) in &got {
        assert_ne!(
            cip_index(c),
            *i,
            "plain replacement never keeps the own CIP"
        );
        same_class += usize::from(cip_index(c) % 3 == i % 3);
    }
    // Any CIP but the own one: 2 of the 8 others share the class.
    let frac = same_class as f64 / got.len() as f64;
    assert!((frac - 0.25).abs() < 0.06, "same-class fraction {frac}");
    // The own CIP missing from the bank: a counted fallback, not a silent change of method.
    let mut no_own = pool_with_homes(2).cdps().to_vec();
    no_own.iter_mut().for_each(|c| c.own_cip = None);
    let cips = pool_with_homes(2).cips().to_vec();
    let own = CombineConfig {
        cip_source: CipSource::Own,
        ..always
    };
    let got = combinations(own, PartPool::new(no_own, cips), 50);
    assert!(!got.is_empty() && got.iter().all(|(_, c)| c.cip_fallback));
}

#[test]
fn original_placement_puts_cdps_back_home() {
    let cfg = CombineConfig {
        p_aug: 1.0,
        p_syn: 0.5,
        placement: CdpPlacement::Original,
        ..CombineConfig::default()
    };
    let pool = pool_with_homes(3);
    let homes: Vec<Option<Home>> = pool.cdps().iter().map(|c| c.home).collect();
    let got = combinations(cfg, pool, 400);
    let mut synthetic_at_home = 0;
    for (_, c) in &got {
        let mut any_missing = false;
        for l in &c.params.layers {
            let src: usize = l.cdp.0[4..].parse().unwrap();
            match homes[src] {
                Some(h) => {
                    assert_eq!((l.scale, l.center), (h.scale, h.center));
                    assert!(!l.flip && l.rotation_deg == 0.0);
                    synthetic_at_home += usize::from(l.synthetic);
                }
                None => any_missing = true,
            }
        }
        assert_eq!(c.home_unavailable, any_missing);
    }
    assert!(
        synthetic_at_home > 0,
        "synthetic edits take their source's home"
    );
    assert!(got.iter().any(|(_, c)| c.home_unavailable));
}

#[test]
fn invalid_config_is_refused() {
    let bad = CombineConfig {
        p_syn: 2.0,
        ..CombineConfig::default()
    };
    assert!(CombineSampler::new(bad, pool(2, 0)).is_err());
}

/// Pins the draws: a change of `rand`, `rand_chacha` or the draw order shows up here.
#[test]
fn golden_decisions_for_a_fixed_seed() {
    let s = sampler(CombineConfig::default(), pool(3, 2));
    let got: Vec<String> = all_decisions(&s, 6)
        .iter()
        .map(|d| match d {
            Decision::Real(r) => format!("real {r:?}"),
            Decision::Combine(c) => {
                let mut s = format!("{}", c.params.cip);
                for l in &c.params.layers {
                    s += &format!(
                        " | {} c{} s{:.4} ({:.4},{:.4}) f{} r{:.3}",
                        l.cdp,
                        l.class.0,
                        l.scale,
                        l.center.0,
                        l.center.1,
                        l.flip as u8,
                        l.rotation_deg
                    );
                }
                s
            }
        })
        .collect();
    assert_eq!(got, GOLDEN, "sampler output changed:\n{}", got.join("\n"));
}

const GOLDEN: [&str; 6] = [
    "real NotDrawn",
    "cip/2 | cdp/1 c1 s0.5872 (0.5062,0.7167) f1 r12.844 | cdp/0 c0 s0.7502 (0.7477,0.3460) f1 r-2.291",
    "real NotDrawn",
    "cip/5 | cdp/3 c0 s0.5641 (0.2934,0.2935) f0 r11.829",
    "real NotDrawn",
    "cip/0 | syn/5-1 c2 s0.6849 (0.7066,0.6597) f0 r-13.188",
];
