//! Shared by the tests that run recipes through the binary (`run_recipe`, `run_recipe_sd`,
//! `run_peers`, `run_voc`, `reproduce`): running `deda` in a folder, the small scarce-layout
//! set they train on, and reading a run's progress and output. The generative fixtures are in
//! `generative_common`.
#![allow(dead_code)]
use std::path::Path;
use std::process::{Command, Output};

/// Runs `deda ARGS` in `cwd`.
pub fn deda(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("cannot start the deda binary")
}

/// stdout followed by stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `deda ARGS` in `cwd`, asserts exit code `code`; returns stdout + stderr.
pub fn deda_code(cwd: &Path, args: &[&str], code: i32) -> String {
    let out = deda(cwd, args);
    let text = text(&out);
    assert_eq!(out.status.code(), Some(code), "deda {args:?}:\n{text}");
    text
}

/// The square of class `c` in its `k`-th image of [`scarce_set`]: dark grey with the class's
/// channel (red, green, blue, again) bright.
pub fn coloured_square(c: usize, k: u32) -> [u8; 3] {
    let mut px = [30u8, 30, 30];
    px[c % 3] = 200 + (k as u8 % 5) * 10;
    px
}

/// A scarce-layout set (`train/`, `test/`, `masks/`) at `root`: `n_train` training and 2 test
/// images per class, `side` px, a square of colour `square(class, k)` on a grey-blue gradient,
/// and its mask; the first `empty_masks` training masks of each class are empty (nothing found
/// there).
pub fn scarce_set(
    root: &Path,
    classes: &[&str],
    n_train: u32,
    side: u32,
    empty_masks: u32,
    square: impl Fn(usize, u32) -> [u8; 3],
) {
    for (split, n) in [("train", n_train), ("test", 2)] {
        for (c, class) in classes.iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            let mdir = root.join("masks").join(split).join(class);
            std::fs::create_dir_all(&mdir).unwrap();
            for k in 0..n {
                let (lo, hi) = (side / 4 + k % 3, 3 * side / 4 - k % 2);
                let inside = |x: u32, y: u32| (lo..hi).contains(&x) && (lo..hi).contains(&y);
                let img = image::RgbImage::from_fn(side, side, |x, y| {
                    if inside(x, y) {
                        image::Rgb(square(c, k))
                    } else {
                        let g = (60 + (x + y) * 120 / (2 * side)) as u8;
                        image::Rgb([g, g, 255 - g])
                    }
                });
                img.save(dir.join(format!("{k}.png"))).unwrap();
                let empty = split == "train" && k < empty_masks;
                let mask = image::GrayImage::from_fn(side, side, |x, y| {
                    image::Luma([if inside(x, y) && !empty { 255 } else { 0 }])
                });
                mask.save(mdir.join(format!("{k}.png"))).unwrap();
            }
        }
    }
}

/// The epochs the run in `dir` has finished (its `checkpoints/state.json`; 0 before the first).
pub fn epochs_done(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("checkpoints/state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["epochs_done"].as_u64())
        .map_or(0, |n| n as usize)
}

/// The first line of `text` starting with `start`.
pub fn line_of<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in:\n{text}"))
}
