//! Axis-aligned boxes in pixel coordinates.
use serde::{Deserialize, Serialize};

/// A box `[x, x + w) × [y, y + h)` in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl BBox {
    /// Pixel area `w · h`.
    pub fn area(&self) -> u64 {
        u64::from(self.w) * u64::from(self.h)
    }

    /// The smallest box holding every pixel where `keep(x, y)` is true, or `None` if none is.
    pub fn enclosing(width: u32, height: u32, keep: impl Fn(u32, u32) -> bool) -> Option<BBox> {
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for y in 0..height {
            for x in 0..width {
                if keep(x, y) {
                    x0 = x0.min(x);
                    y0 = y0.min(y);
                    x1 = x1.max(x);
                    y1 = y1.max(y);
                }
            }
        }
        (x0 != u32::MAX).then(|| BBox {
            x: x0,
            y: y0,
            w: x1 - x0 + 1,
            h: y1 - y0 + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclosing_box_of_two_pixels() {
        let b = BBox::enclosing(10, 8, |x, y| (x, y) == (2, 3) || (x, y) == (5, 6)).unwrap();
        assert_eq!(
            b,
            BBox {
                x: 2,
                y: 3,
                w: 4,
                h: 4
            }
        );
        assert_eq!(b.area(), 16);
    }

    #[test]
    fn enclosing_box_of_nothing_is_none() {
        assert!(BBox::enclosing(4, 4, |_, _| false).is_none());
    }
}
