//! `deda invert` then `deda edit --editor sd` through the binary, on the tiny random-weight
//! diffusers-layout pipeline and LayerDiffuse files of `crates/sd/tests/fixtures`: one token file
//! per class, K synthetic CDPs per real CDP linked to their source, a contact sheet, and reruns
//! that resume without duplicates or re-work.
mod generative_common;

use std::fs;

use deda_bank::PartBank;
use deda_core::PartKind;
use generative_common::{deda, files_in, Tiny, EDIT, INVERT};

#[test]
fn invert_then_sd_edit_through_the_binary_resume_and_shards() {
    let t = Tiny::new(&[(0, 40, 30), (1, 43, 31), (0, 46, 32), (1, 49, 33)]);
    let bank = &t.bank;

    // Shard 0/2 inverts class 0 only; the full run then does the rest.
    let out = t.run("invert", &[&INVERT[..], &["--shard", "0/2"]].concat());
    assert!(out.contains("1 inverted"), "{out}");
    let emb = bank.join("embeddings");
    // Token files, beside training_set.json (which images they were learnt from).
    let token_files = |dir: &std::path::Path| -> Vec<String> {
        files_in(dir)
            .into_iter()
            .filter(|f| f.ends_with(".safetensors"))
            .collect()
    };
    assert!(emb.join("training_set.json").is_file());
    let first = token_files(&emb);
    assert_eq!(first.len(), 1, "one token file after shard 0/2: {first:?}");
    let out = t.run("invert", &INVERT);
    assert!(out.contains("1 inverted, 1 already there"), "{out}");
    let tokens = token_files(&emb);
    assert_eq!(tokens.len(), 2, "one token file per class: {tokens:?}");
    let stamp = fs::metadata(emb.join(&tokens[0]))
        .unwrap()
        .modified()
        .unwrap();
    let out = t.run("invert", &INVERT);
    assert!(out.contains("0 inverted, 2 already there"), "{out}");
    assert_eq!(
        fs::metadata(emb.join(&tokens[0]))
            .unwrap()
            .modified()
            .unwrap(),
        stamp,
        "a rerun must not rewrite a token file"
    );

    // K = 2 transparent SDEdits per real CDP in two shards, merged, then no-op reruns.
    for (i, shard) in ["0/2", "1/2"].into_iter().enumerate() {
        let out = t.run("edit", &[&EDIT[..], &["--shard", shard]].concat());
        assert!(
            out.contains("2 owned by this shard, 4 variant(s) written"),
            "shard {i}: {out}"
        );
    }
    deda(&["bank", "merge", bank.to_str().unwrap()]);
    let sheet = t.dir.path().join("sheet.png");
    let out = t.run(
        "edit",
        &[&EDIT[..], &["--sheet", sheet.to_str().unwrap()]].concat(),
    );
    assert!(
        out.contains("0 variant(s) written, 8 already there"),
        "{out}"
    );
    let out = t.run("edit", &EDIT);
    assert!(
        out.contains("0 variant(s) written, 8 already there"),
        "{out}"
    );

    let b = PartBank::open(bank).unwrap();
    let syn: Vec<_> = b
        .records()
        .iter()
        .filter(|r| r.kind == PartKind::SyntheticCdp)
        .collect();
    assert_eq!(syn.len(), 8, "K = 2 per real CDP, no duplicates");
    for real in b.records().iter().filter(|r| r.kind == PartKind::Cdp) {
        let mine: Vec<_> = syn
            .iter()
            .filter(|s| s.source_part.as_ref() == Some(&real.id))
            .collect();
        let mut variants: Vec<u32> = mine.iter().map(|s| s.variant.unwrap()).collect();
        variants.sort();
        assert_eq!(variants, vec![0, 1], "variants of {}", real.id);
        for s in mine {
            assert_eq!(s.class, real.class);
            let img = b.load_cdp(&s.id).unwrap();
            assert!(
                img.pixels().any(|p| p[3] > 0),
                "{} is fully transparent",
                s.id
            );
        }
    }
    assert!(b.verify().is_ok(), "bank verifies after the edits");
    let sheet_img = image::open(&sheet).unwrap();
    assert!(sheet_img.width() > 3 * 128 && sheet_img.height() > 4 * 128);
}

#[test]
fn edit_with_the_transparent_attention_lora() {
    let t = Tiny::new(&[(0, 40, 30)]);
    let lora = generative_common::sd_fixtures().join("transparent_attn_tiny/lora.safetensors");
    let with_lora = [&EDIT[..], &["--transparent-attn", lora.to_str().unwrap()]].concat();
    let out = t.run("edit", &with_lora);
    assert!(out.contains("2 variant(s) written"), "{out}");
    let bad = t.dir.path().join("not_a_lora.safetensors");
    fs::copy(
        t.ld.join("layer_sd15_vae_transparent_encoder.safetensors"),
        &bad,
    )
    .unwrap();
    let err = t.fails(
        "invert",
        &[&INVERT[..], &["--transparent-attn", bad.to_str().unwrap()]].concat(),
    );
    assert!(
        err.contains("not_a_lora.safetensors") && err.contains("missing tensor hookers.layers.0"),
        "{err}"
    );
}

#[test]
fn weights_named_hf_resolve_from_the_local_cache() {
    let t = Tiny::new(&[(0, 40, 30)]);
    // The tiny pipeline as snapshot `c0ffee` of `tiny-org/tiny-sd`, refs/main pointing at it.
    let cache = t.dir.path().join("hub");
    let repo = cache.join("models--tiny-org--tiny-sd");
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::create_dir_all(repo.join("snapshots")).unwrap();
    fs::rename(&t.sd, repo.join("snapshots/c0ffee")).unwrap();
    fs::write(repo.join("refs/main"), "c0ffee").unwrap();
    let mut args = t.args("edit", &EDIT);
    let at = args.iter().position(|a| a == "--weights").unwrap();
    args[at + 1] = "hf:tiny-org/tiny-sd".into();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = generative_common::run_binary_env(&argv, &[("HF_HUB_CACHE", &cache)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("2 variant(s) written"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    args[at + 1] = "hf:tiny-org/tiny-sd@v9".into();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = generative_common::run_binary_env(&argv, &[("HF_HUB_CACHE", &cache)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("huggingface-cli download tiny-org/tiny-sd"),
        "{stderr}"
    );
}

#[test]
fn invert_refuses_a_bank_held_by_another_writer_naming_its_pid() {
    let t = Tiny::new(&[(0, 40, 30), (1, 43, 31)]);
    let lock = deda_bank::BankLock::acquire(&t.bank, None).unwrap();
    let err = t.fails("invert", &INVERT);
    assert!(
        err.contains(&format!("is in use by PID {}", std::process::id())),
        "{err}"
    );
    assert!(!t.bank.join("embeddings").join("training_set.json").exists());
    drop(lock);
    let out = t.run("invert", &INVERT);
    assert!(out.contains("2 inverted"), "{out}");
}
