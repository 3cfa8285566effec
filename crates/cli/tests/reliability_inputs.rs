//! Hostile inputs through the binary: a huge image is a listed failure (never an abort), a
//! large one is decoupled at a bounded working resolution, symbolic-link loops in an image
//! folder neither hang nor multiply the data set, and a truncated JPEG is refused by name.
use image::{DynamicImage, GrayImage, Luma, RgbImage};
use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `deda args` in `cwd`, killing it after `limit` (a hang is a test failure).
fn deda(cwd: &Path, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_deda"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the deda binary");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("waiting for deda").is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collecting deda's output");
            panic!(
                "deda {args:?} did not finish within {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collecting deda's output")
}

/// `deda decouple --dataset DATASET --bank bank EXTRA…` in `cwd`, stopped after `limit`.
fn decouple(cwd: &Path, dataset: &str, extra: &[&str], limit: Duration) -> Output {
    let mut args = vec!["decouple", "--dataset", dataset, "--bank", "bank"];
    args.extend_from_slice(extra);
    deda(cwd, &args, limit)
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn textured(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503);
        image::Rgb([(x * 4 + y) as u8, (v >> 7) as u8, (y * 3) as u8])
    })
}

fn jpeg_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

fn rect_mask(w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        let inside = (w / 4..3 * w / 4).contains(&x) && (h / 4..3 * h / 4).contains(&y);
        Luma([if inside { 255 } else { 0 }])
    })
}

/// Writes image `rel` (under the set's root) as JPEG bytes, with a rectangle mask.
fn add_sample(root: &Path, rel: &str, bytes: &[u8], (w, h): (u32, u32)) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let mask = root.join("masks").join(rel).with_extension("png");
    std::fs::create_dir_all(mask.parent().unwrap()).unwrap();
    rect_mask(w, h).save(mask).unwrap();
}

/// A `scarce` set (image folder + masks) with `n` 48×40 training images per class.
fn small_set(root: &Path, n: usize) {
    for class in ["cat", "dog"] {
        for i in 0..n {
            let img = textured(48, 40);
            add_sample(
                root,
                &format!("train/{class}/{i}.jpg"),
                &jpeg_bytes(&img),
                (48, 40),
            );
        }
        let test = root.join(format!("test/{class}"));
        std::fs::create_dir_all(&test).unwrap();
        std::fs::write(test.join("t.jpg"), jpeg_bytes(&textured(16, 16))).unwrap();
    }
}

/// A valid 8-bit grayscale PNG of `w × h` black pixels, compressed by hand (deflate with the
/// fixed Huffman code: one literal, then length-258 copies at distance 1), so that a
/// 20000 × 20000 image is a 2.5 MB file written in well under a second.
fn black_png(w: u32, h: u32) -> Vec<u8> {
    let raw_len = u64::from(h) * (u64::from(w) + 1); // a filter byte (0) per row, all zeros
    let mut bits = BitWriter::default();
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // fixed Huffman
    bits.put_rev(0b0011_0000, 8); // literal 0
    let mut left = raw_len - 1;
    while left > 0 {
        let len = left.min(258);
        if len >= 3 {
            put_length(&mut bits, len as u32);
            bits.put_rev(0, 5); // distance code 0 = 1
            left -= len;
        } else {
            bits.put_rev(0b0011_0000, 8);
            left -= 1;
        }
    }
    bits.put_rev(0, 7); // end of block (256)
    let mut z = vec![0x78, 0x01];
    z.extend(bits.finish());
    let adler = ((raw_len % 65_521) << 16) as u32 | 1;
    z.extend(adler.to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &z);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// Length `len` (3..=258) in the fixed Huffman code, with its extra bits.
fn put_length(bits: &mut BitWriter, len: u32) {
    const BASE: [u32; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const EXTRA: [u32; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    let i = BASE.iter().rposition(|&b| b <= len).unwrap();
    let code = 257 + i as u32;
    if code <= 279 {
        bits.put_rev(code - 256, 7);
    } else {
        bits.put_rev(code - 280 + 0b1100_0000, 8);
    }
    bits.put(len - BASE[i], EXTRA[i]);
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    /// `count` bits of `v`, least significant first (extra bits, header bits).
    fn put(&mut self, v: u32, count: u32) {
        self.acc |= u64::from(v) << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    /// A Huffman code of `count` bits, most significant first.
    fn put_rev(&mut self, code: u32, count: u32) {
        let rev = code.reverse_bits() >> (32 - count);
        self.put(rev, count);
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    png.extend(&body);
    png.extend(crc32(&body).to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let table: Vec<u32> = (0..256u32)
        .map(|mut c| {
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            c
        })
        .collect();
    !data.iter().fold(0xFFFF_FFFFu32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[test]
fn hand_made_png_is_valid() {
    let bytes = black_png(300, 7);
    let img = image::load_from_memory(&bytes).unwrap().into_luma8();
    assert_eq!(img.dimensions(), (300, 7));
    assert!(img.as_raw().iter().all(|&v| v == 0));
}

#[test]
fn huge_png_is_a_listed_failure_and_the_rest_is_decoupled() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    small_set(&root, 3);
    let huge = black_png(20_000, 20_000);
    assert!(huge.len() < 4_000_000, "{}", huge.len());
    std::fs::write(root.join("train/cat/huge.png"), &huge).unwrap();
    // its mask is never read: the image is refused from its header
    let ds = format!("scarce:{}", root.display());
    let out = decouple(tmp.path(), &ds, &[], Duration::from_secs(120));
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("decoupled 6 sample(s)"), "{all}");
    assert!(
        all.contains("failed: train/cat/huge.png") && all.contains("too large"),
        "{all}"
    );
    let report = std::fs::read_to_string(tmp.path().join("bank/decouple-report.md")).unwrap();
    assert!(report.contains("train/cat/huge.png"), "{report}");
    // the rerun skips what is stored and fails the same way, without aborting
    let again = decouple(tmp.path(), &ds, &[], Duration::from_secs(120));
    let all = text(&again);
    assert_eq!(again.status.code(), Some(1), "{all}");
    assert!(
        all.contains("6 already in the bank, 0 with nothing found, 0 too large, 1 failed"),
        "{all}"
    );
}

#[test]
fn large_image_is_decoupled_at_the_working_resolution() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    small_set(&root, 1);
    let big = textured(600, 400);
    add_sample(&root, "train/dog/big.jpg", &jpeg_bytes(&big), (600, 400));
    let ds = format!("scarce:{}", root.display());
    let out = decouple(
        tmp.path(),
        &ds,
        &["--max-working-side", "100", "--cip-format", "png"],
        Duration::from_secs(120),
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("decoupled 3 sample(s)"), "{all}");
    // the parts are at full resolution: the CIP is the whole photo, the CDP its middle half
    let manifest = std::fs::read_to_string(tmp.path().join("bank/manifest.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = manifest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["source_image"] == "train/dog/big.jpg")
        .collect();
    assert_eq!(rows.len(), 2, "{manifest}");
    for row in &rows {
        let file = tmp.path().join("bank").join(row["file"].as_str().unwrap());
        let (w, h) = image::image_dimensions(&file).unwrap();
        match row["kind"].as_str().unwrap() {
            "cip" => assert_eq!((w, h), (600, 400)),
            "cdp" => {
                assert!(w.abs_diff(300) <= 6 && h.abs_diff(200) <= 6, "CDP {w}x{h}");
                let b = &row["bbox"];
                let x = b["x"].as_u64().unwrap();
                assert!(x.abs_diff(150) <= 6, "{b}");
            }
            other => panic!("unexpected kind {other}"),
        }
    }
}

#[test]
fn symlink_loops_neither_hang_nor_multiply_the_data_set() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    small_set(&root, 5);
    std::os::unix::fs::symlink(".", root.join("train/cat/a")).unwrap();
    std::os::unix::fs::symlink(".", root.join("train/cat/b")).unwrap();
    let ds = format!("scarce:{}", root.display());
    let out = decouple(tmp.path(), &ds, &[], Duration::from_secs(60));
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("decoupled 10 sample(s)"), "{all}");
}

#[test]
fn one_symlink_loop_gives_exactly_the_real_images() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    small_set(&root, 5);
    std::os::unix::fs::symlink(".", root.join("train/dog/again")).unwrap();
    let ds = format!("scarce:{}", root.display());
    let out = decouple(tmp.path(), &ds, &[], Duration::from_secs(60));
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("decoupled 10 sample(s), 0 already"), "{all}");
    let manifest = std::fs::read_to_string(tmp.path().join("bank/manifest.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 20, "{manifest}");
    assert!(!manifest.contains("again/"), "{manifest}");
}

#[test]
fn truncated_jpegs_are_refused_by_name_and_trailing_bytes_are_fine() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    small_set(&root, 2);
    let whole = jpeg_bytes(&textured(64, 48));
    add_sample(
        &root,
        "train/cat/half.jpg",
        &whole[..whole.len() / 2],
        (64, 48),
    );
    add_sample(
        &root,
        "train/cat/most.jpg",
        &whole[..whole.len() * 9 / 10],
        (64, 48),
    );
    let mut tail = whole.clone();
    tail.extend_from_slice(b"trailing bytes after the end-of-image marker");
    add_sample(&root, "train/dog/tail.jpg", &tail, (64, 48));
    let ds = format!("scarce:{}", root.display());
    let out = decouple(tmp.path(), &ds, &[], Duration::from_secs(60));
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("decoupled 5 sample(s)"), "{all}");
    assert!(all.contains("2 failed"), "{all}");
    for name in ["half", "most"] {
        let line = all
            .lines()
            .find(|l| l.contains(&format!("failed: train/cat/{name}.jpg")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{all}"));
        assert!(line.contains("truncated"), "{line}");
        assert!(line.contains(&format!("{name}.jpg")), "{line}");
    }
    let manifest = std::fs::read_to_string(tmp.path().join("bank/manifest.jsonl")).unwrap();
    assert!(manifest.contains("train/dog/tail.jpg"), "{manifest}");
    assert!(!manifest.contains("half.jpg") && !manifest.contains("most.jpg"));
}

#[test]
fn an_unusable_working_side_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    small_set(&root, 1);
    let ds = format!("scarce:{}", root.display());
    let out = decouple(
        tmp.path(),
        &ds,
        &["--max-working-side", "10"],
        Duration::from_secs(60),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("max_working_side = 10"), "{all}");
    assert!(!tmp.path().join("bank").exists(), "a bank was created");
}
