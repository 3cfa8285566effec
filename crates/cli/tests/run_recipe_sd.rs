//! `deda run` with the generative stages: `[stages.sd]` on the tiny random-weight SD-1.5 and
//! LayerDiffuse fixtures, TTTI (`[stages.invert]`) and the `sd` editor (`[stages.edit]`) after
//! ground-truth decoupling, then training; a rerun reuses everything, and other TTTI settings
//! move the old tokens aside and redo invert and edit.
mod common;
mod generative_common;

use common::{deda_code, line_of};
use generative_common::{clip_bpe, tiny_layer_diffuse, tiny_pipeline};
use std::path::Path;

/// Two classes, 3 training and 1 test image each, with ground-truth masks (scarce layout).
fn write_set(root: &Path) {
    for (split, n) in [("train", 3u32), ("test", 1)] {
        for (c, class) in ["duck", "crow"].iter().enumerate() {
            for sub in ["", "masks/"] {
                std::fs::create_dir_all(root.join(format!("{sub}{split}/{class}"))).unwrap();
            }
            for k in 0..n {
                let inside = |x: u32, y: u32| (10 + k..38).contains(&x) && (12..36).contains(&y);
                image::RgbImage::from_fn(48, 48, |x, y| {
                    if inside(x, y) {
                        image::Rgb([200 - 90 * c as u8, 40 + 90 * c as u8, 60])
                    } else {
                        image::Rgb([(x * 5) as u8, 120, (y * 5) as u8])
                    }
                })
                .save(root.join(format!("{split}/{class}/{k}.png")))
                .unwrap();
                image::GrayImage::from_fn(48, 48, |x, y| {
                    image::Luma([if inside(x, y) { 255 } else { 0 }])
                })
                .save(root.join(format!("masks/{split}/{class}/{k}.png")))
                .unwrap();
            }
        }
    }
}

fn recipe(sd: &Path, ld: &Path, invert_steps: u32) -> String {
    format!(
        r#"
[data]
dataset = "scarce:set"
[model]
name = "resnet18"
width = 8
layers = [1, 1, 1, 1]
[loader]
batch_size = 4
threads = 1
resize_short = 36
crop = 32
[method]
name = "deda"
bank = "bank"
[train]
epochs = 1
device = "cpu"
torch_threads = 1
[stages.decouple]
segmenter = "ground-truth"
prompt = "bird"
[stages.sd]
weights = "{}"
layer_diffuse = "{}"
tokenizer = "{}"
device = "cpu"
[stages.invert]
init_word = "bird"
steps = {invert_steps}
batch = 2
micro_batch = 1
size = 64
[stages.edit]
editor = "sd"
k = 2
size = 64
steps = 5
guidance = 2.0
"#,
        sd.display(),
        ld.display(),
        clip_bpe().display()
    )
}

#[test]
fn a_recipe_with_tiny_sd_weights_inverts_edits_and_trains_then_reuses_or_redoes() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write_set(&cwd.join("set"));
    let (sd, ld) = (tiny_pipeline(cwd), tiny_layer_diffuse(cwd));
    std::fs::write(cwd.join("r.toml"), recipe(&sd, &ld, 2)).unwrap();

    let out = deda_code(cwd, &["run", "r.toml", "--run-dir", "run"], 0);
    assert!(out.contains("2 inverted"), "{out}");
    assert!(
        out.contains("learnt from the 6 training images of scarce:set"),
        "{out}"
    );
    assert!(
        out.contains("12 variant(s) written") && out.contains("edit:sd"),
        "{out}"
    );
    assert!(out.contains("done: 1 epochs"), "{out}");
    let tokens = std::fs::read_dir(cwd.join("bank/embeddings"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "safetensors")
        })
        .count();
    assert_eq!(tokens, 2, "one token per class");

    let again = deda_code(cwd, &["run", "r.toml", "--run-dir", "run", "--plan"], 0);
    for stage in ["decouple", "invert", "edit", "train"] {
        assert!(line_of(&again, stage).contains("reuse"), "{again}");
    }

    // Other TTTI settings: the tokens are learnt again (the old ones moved aside), so the
    // edits, and the training on them, are redone; decoupling is kept.
    std::fs::write(cwd.join("r.toml"), recipe(&sd, &ld, 3)).unwrap();
    let plan = deda_code(cwd, &["run", "r.toml", "--run-dir", "run", "--plan"], 0);
    assert!(line_of(&plan, "decouple").contains("reuse"), "{plan}");
    assert!(
        line_of(&plan, "invert").contains("embeddings.superseded-1")
            && line_of(&plan, "invert").contains("learnt with other settings"),
        "{plan}"
    );
    assert!(
        line_of(&plan, "edit").contains("the class tokens are (re)learnt first"),
        "{plan}"
    );
    let redo = deda_code(cwd, &["run", "r.toml", "--run-dir", "run"], 0);
    assert!(
        redo.contains("2 inverted") && redo.contains("12 variant(s) written"),
        "{redo}"
    );
    assert!(
        cwd.join("bank/embeddings.superseded-1").is_dir(),
        "old tokens kept"
    );
    assert!(redo.contains("done: 1 epochs (1 this call)"), "{redo}");
}
