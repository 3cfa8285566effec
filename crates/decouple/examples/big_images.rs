//! Writes the inputs of `tools/bench_big_image.sh`: a `scarce` set (image folder + masks)
//! under the folder given as the only argument, holding
//! - `train/photo/big.jpg`: a 12000 × 9000 JPEG photo (smooth background, textured ellipse)
//!   and its ground-truth mask `masks/train/photo/big.png`;
//! - `train/photo/huge.png`: a 20000 × 20000 black PNG of about 2.5 MB (hand-compressed);
//! - one small test image.
use image::{GrayImage, Luma, Rgb, RgbImage};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args()
        .nth(1)
        .ok_or("usage: big_images <output folder>")?;
    let root = Path::new(&root);
    let (w, h) = (12_000u32, 9_000u32);
    let inside = |x: u32, y: u32| {
        let dx = (f64::from(x) - 6_000.0) / 3_000.0;
        let dy = (f64::from(y) - 4_500.0) / 2_500.0;
        dx * dx + dy * dy <= 1.0
    };
    let photo = RgbImage::from_fn(w, h, |x, y| {
        if inside(x, y) {
            let v = (x ^ y).wrapping_mul(2_654_435_761) >> 24;
            Rgb([200, (v & 0x7F) as u8 + 60, 40])
        } else {
            Rgb([(x / 60) as u8, (y / 40) as u8, 150])
        }
    });
    let dir = root.join("train/photo");
    std::fs::create_dir_all(&dir)?;
    photo.save(dir.join("big.jpg"))?;
    drop(photo);
    let mask = GrayImage::from_fn(w, h, |x, y| Luma([if inside(x, y) { 255 } else { 0 }]));
    let mdir = root.join("masks/train/photo");
    std::fs::create_dir_all(&mdir)?;
    mask.save(mdir.join("big.png"))?;
    drop(mask);
    std::fs::write(dir.join("huge.png"), black_png(20_000, 20_000))?;
    let test = root.join("test/photo");
    std::fs::create_dir_all(&test)?;
    RgbImage::from_pixel(32, 32, Rgb([9, 9, 9])).save(test.join("t.png"))?;
    Ok(())
}

/// A valid 8-bit grayscale PNG of `w × h` black pixels: deflate with the fixed Huffman code,
/// one literal 0 and then length-258 copies at distance 1.
fn black_png(w: u32, h: u32) -> Vec<u8> {
    let raw_len = u64::from(h) * (u64::from(w) + 1);
    let mut bits = Bits::default();
    bits.put(1, 1);
    bits.put(1, 2);
    bits.code(0b0011_0000, 8);
    let mut left = raw_len - 1;
    while left >= 258 {
        bits.code(285 - 280 + 0b1100_0000, 8); // length 258
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.code(0b0011_0000, 8);
    }
    bits.code(0, 7); // end of block
    let mut z = vec![0x78, 0x01];
    z.extend(bits.finish());
    z.extend((((raw_len % 65_521) << 16) as u32 | 1).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &z);
    chunk(&mut png, b"IEND", &[]);
    png
}

#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, v: u32, count: u32) {
        self.acc |= u64::from(v) << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    fn code(&mut self, code: u32, count: u32) {
        self.put(code.reverse_bits() >> (32 - count), count);
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
    let crc = !body.iter().fold(0xFFFF_FFFFu32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    });
    png.extend(&body);
    png.extend(crc.to_be_bytes());
}
