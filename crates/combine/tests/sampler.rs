//! Behaviour of the sampler and a golden pin of its draws.
use deda_combine::{
    CdpEntry, CipEntry, CombineConfig, CombineSampler, Decision, PartPool, RealReason,
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
