//! Bounded fuzzing of image decoding, run with the normal test suite: valid PNG and JPEG files
//! are truncated, bit-flipped, overwritten and spliced at random (a fixed seed, 1000 cases per
//! format; for half the PNG cases the chunk checksums are repaired so that the mutation
//! reaches the decoder), and decoding must return an image or an error naming the file; never
//! panic, never abort. A small pixel limit keeps every case fast (mutated headers may claim
//! large sizes; those must be refused, not decoded).
use deda_core::image_io::{decode_bytes_with, DecodeLimits};
use image::{DynamicImage, ImageFormat, RgbImage};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use std::io::Cursor;
use std::path::Path;
use std::time::Instant;

const CASES: u32 = 1000;

fn seed_file(format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(40, 28, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 9) as u8, ((x ^ y) * 5) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

/// One mutation of a file.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Overwrite(usize, Vec<u8>),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Mutation::Overwrite(i, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len().max(1);
    match m {
        Mutation::Truncate(i) => bytes.truncate(i % n),
        Mutation::Flip(i, b) => {
            if let Some(v) = bytes.get_mut(i % n) {
                *v ^= b;
            }
        }
        Mutation::Overwrite(i, v) => {
            for (k, b) in v.iter().enumerate() {
                if let Some(x) = bytes.get_mut((i % n) + k) {
                    *x = *b;
                }
            }
        }
        Mutation::Insert(i, v) => {
            let at = (i % n).min(bytes.len());
            bytes.splice(at..at, v.iter().copied());
        }
        Mutation::Remove(i, k) => {
            let at = (i % n).min(bytes.len());
            let end = (at + k).min(bytes.len());
            bytes.drain(at..end);
        }
    }
}

/// Recomputes the CRC of every complete PNG chunk, so that mutations reach the decoder
/// instead of stopping at the checksum.
fn fix_png_crcs(bytes: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= bytes.len() {
        let len =
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|e| e + 4 <= bytes.len()) else {
            break;
        };
        let crc = crc32(&bytes[at + 4..end]);
        bytes[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn fuzz(format: ImageFormat, name: &str) {
    let seed = seed_file(format);
    let limits = DecodeLimits {
        max_pixels: 1 << 20,
        max_alloc: 64 << 20,
    };
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(14),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let started = Instant::now();
    let (decoded, refused) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let result = runner.run(
        &(prop::collection::vec(mutation(), 1..4), any::<bool>()),
        |(mutations, fix_crcs)| {
            let mut bytes = seed.clone();
            for m in &mutations {
                apply(&mut bytes, m);
            }
            if fix_crcs && format == ImageFormat::Png {
                fix_png_crcs(&mut bytes);
            }
            match decode_bytes_with(&bytes, Path::new(name), &limits) {
                Ok(img) => {
                    prop_assert!(img.width() > 0 && img.height() > 0);
                    decoded.set(decoded.get() + 1);
                }
                Err(e) => {
                    prop_assert!(e.to_string().contains(name), "{}", e);
                    refused.set(refused.get() + 1);
                }
            }
            Ok(())
        },
    );
    eprintln!(
        "{format:?}: {} cases ({} decoded, {} refused) in {:.2} s",
        decoded.get() + refused.get(),
        decoded.get(),
        refused.get(),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{format:?}: {e}");
    }
    assert!(refused.get() > 0, "no mutation was refused");
}

#[test]
fn mutated_png_never_panics() {
    fuzz(ImageFormat::Png, "fuzz/case.png");
}

#[test]
fn mutated_jpeg_never_panics() {
    fuzz(ImageFormat::Jpeg, "fuzz/case.jpg");
}
