//! Contact sheets: a grid of thumbnails in one PNG, so a person can look at many samples at once.
use image::{imageops, Rgb, RgbImage, RgbaImage};

/// Background grey between tiles.
const GUTTER: Rgb<u8> = Rgb([40, 40, 40]);
/// Checkerboard colours behind transparent cut-outs.
const CHECKER: [Rgb<u8>; 2] = [Rgb([200, 200, 200]), Rgb([150, 150, 150])];

/// Lays `tiles` out in `columns` columns, each fitted (aspect kept) into `tile`×`tile` pixels.
pub fn grid(tiles: &[RgbImage], columns: u32, tile: u32) -> RgbImage {
    let columns = columns.max(1);
    let rows = (tiles.len() as u32).div_ceil(columns).max(1);
    let pad = 4;
    let mut sheet = RgbImage::from_pixel(
        columns * (tile + pad) + pad,
        rows * (tile + pad) + pad,
        GUTTER,
    );
    for (i, t) in tiles.iter().enumerate() {
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        let fitted = fit(t, tile);
        let x = pad + col * (tile + pad) + (tile - fitted.width()) / 2;
        let y = pad + row * (tile + pad) + (tile - fitted.height()) / 2;
        imageops::replace(&mut sheet, &fitted, i64::from(x), i64::from(y));
    }
    sheet
}

/// Scales `img` so that its longer side is `tile` pixels.
fn fit(img: &RgbImage, tile: u32) -> RgbImage {
    let s = tile as f32 / img.width().max(img.height()) as f32;
    let w = ((img.width() as f32 * s).round() as u32).clamp(1, tile);
    let h = ((img.height() as f32 * s).round() as u32).clamp(1, tile);
    imageops::resize(img, w, h, imageops::FilterType::Triangle)
}

/// Flattens a transparent cut-out over a checkerboard, the usual way to show transparency.
pub fn over_checkerboard(img: &RgbaImage) -> RgbImage {
    deda_core::psnr::over(img, |x, y| CHECKER[((x / 8 + y / 8) % 2) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_the_expected_size_and_places_tiles() {
        let red = RgbImage::from_pixel(10, 20, Rgb([255, 0, 0]));
        let sheet = grid(&[red.clone(), red.clone(), red], 2, 32);
        assert_eq!((sheet.width(), sheet.height()), (2 * 36 + 4, 2 * 36 + 4));
        // The first tile's centre is red; the empty fourth cell is gutter.
        assert_eq!(sheet.get_pixel(4 + 16, 4 + 16), &Rgb([255, 0, 0]));
        assert_eq!(sheet.get_pixel(40 + 16, 40 + 16), &GUTTER);
    }

    #[test]
    fn transparent_pixels_show_the_checkerboard() {
        let img = RgbaImage::from_pixel(16, 16, image::Rgba([0, 0, 0, 0]));
        let flat = over_checkerboard(&img);
        assert_eq!(flat.get_pixel(0, 0), &CHECKER[0]);
        assert_eq!(flat.get_pixel(8, 0), &CHECKER[1]);
    }
}
