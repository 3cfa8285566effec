//! Binary PPM (`P6`, 8-bit): the uncompressed CIP format. Reading one is a single file read
//! into the pixel buffer, with no decoding, which is what the online combiner needs when it
//! reads a CIP for every sample; any image tool (PIL, ImageMagick, netpbm) reads it too.
use deda_core::Error;
use image::RgbImage;
use std::io::Read;
use std::path::Path;

/// The longest header we accept (magic, size, maxval and comments); ours is about 16 bytes.
const MAX_HEADER: usize = 512;

/// The bytes of `img` as a binary PPM: `P6\n<w> <h>\n255\n` then the RGB rows.
pub(crate) fn encode_ppm(img: &RgbImage) -> Vec<u8> {
    let header = format!("P6\n{} {}\n255\n", img.width(), img.height());
    let mut bytes = Vec::with_capacity(header.len() + img.as_raw().len());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(img.as_raw());
    bytes
}

/// Reads the binary PPM at `path` (8-bit, maxval 255), reusing `buf`'s allocation for the
/// pixels.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Unusable`] naming the problem if it is
/// not an 8-bit binary PPM or its length does not match its header.
#[cfg(test)]
pub(crate) fn read_ppm(path: &Path, buf: Vec<u8>) -> Result<RgbImage, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    read_ppm_file(file, path, buf)
}

/// As [`read_ppm`], from a file already open (`path` names it in messages).
pub(crate) fn read_ppm_file(
    mut file: std::fs::File,
    path: &Path,
    mut buf: Vec<u8>,
) -> Result<RgbImage, Error> {
    let unusable = |reason: String| Error::Unusable {
        path: path.to_path_buf(),
        reason,
    };
    let mut head = [0u8; MAX_HEADER];
    let got = read_up_to(&mut file, &mut head).map_err(|e| Error::io(path, e))?;
    let header = parse_header(&head[..got]).map_err(unusable)?;
    let len = header.width as usize * header.height as usize * 3;
    // Check the size before allocating, so a damaged header cannot ask for gigabytes.
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if file_len != (header.len + len) as u64 {
        return Err(unusable(format!(
            "{} bytes, but a {}x{} PPM with this header has {}",
            file_len,
            header.width,
            header.height,
            header.len + len
        )));
    }
    let in_head = (got - header.len).min(len);
    // Only bytes beyond the reused buffer's length are zeroed; all are overwritten below.
    buf.truncate(len);
    buf.resize(len, 0);
    buf[..in_head].copy_from_slice(&head[header.len..header.len + in_head]);
    file.read_exact(&mut buf[in_head..])
        .map_err(|e| Error::io(path, e))?;
    RgbImage::from_raw(header.width, header.height, buf)
        .ok_or_else(|| unusable("pixel buffer does not match the header".into()))
}

/// Decodes a binary PPM already read into memory, reusing `bytes`' allocation for the pixels.
///
/// # Errors
/// As [`read_ppm`].
pub(crate) fn ppm_from_bytes(mut bytes: Vec<u8>, path: &Path) -> Result<RgbImage, Error> {
    let unusable = |reason: String| Error::Unusable {
        path: path.to_path_buf(),
        reason,
    };
    let header = parse_header(&bytes[..bytes.len().min(MAX_HEADER)]).map_err(unusable)?;
    let len = header.width as usize * header.height as usize * 3;
    if bytes.len() != header.len + len {
        return Err(unusable(format!(
            "{} bytes, but a {}x{} PPM with this header has {}",
            bytes.len(),
            header.width,
            header.height,
            header.len + len
        )));
    }
    bytes.drain(..header.len);
    RgbImage::from_raw(header.width, header.height, bytes)
        .ok_or_else(|| unusable("pixel buffer does not match the header".into()))
}

/// Fills `buf` as far as the file allows; returns the number of bytes read.
fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// A parsed PPM header: image size and the header's length in bytes.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    width: u32,
    height: u32,
    len: usize,
}

/// Parses `P6 <w> <h> <maxval>` (whitespace and `#` comments between fields, one whitespace
/// byte after maxval).
fn parse_header(bytes: &[u8]) -> Result<Header, String> {
    if !bytes.starts_with(b"P6") {
        return Err("not a binary PPM (the file does not start with P6)".into());
    }
    let mut pos = 2;
    let mut fields = [0u32; 3];
    for (k, field) in fields.iter_mut().enumerate() {
        skip_blanks(bytes, &mut pos);
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let name = ["width", "height", "maxval"][k];
        *field = std::str::from_utf8(&bytes[start..pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("PPM header: no valid {name}"))?;
    }
    let [width, height, maxval] = fields;
    if maxval != 255 {
        return Err(format!(
            "PPM maxval {maxval}: only 8-bit (255) is supported"
        ));
    }
    if width == 0 || height == 0 {
        return Err(format!("PPM image is {width}x{height}: it has no pixels"));
    }
    if !bytes.get(pos).is_some_and(u8::is_ascii_whitespace) {
        return Err("PPM header: no whitespace after maxval".into());
    }
    Ok(Header {
        width,
        height,
        len: pos + 1,
    })
}

fn skip_blanks(bytes: &[u8], pos: &mut usize) {
    while let Some(&b) = bytes.get(*pos) {
        if b == b'#' {
            while bytes.get(*pos).is_some_and(|&c| c != b'\n') {
                *pos += 1;
            }
        } else if b.is_ascii_whitespace() {
            *pos += 1;
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8, y as u8, 200]));
        let path = dir.path().join("a.ppm");
        std::fs::write(&path, encode_ppm(&img)).unwrap();
        assert_eq!(read_ppm(&path, Vec::new()).unwrap(), img);
        // A buffer reused from a larger image.
        assert_eq!(read_ppm(&path, vec![9; 1000]).unwrap(), img);
        assert_eq!(ppm_from_bytes(encode_ppm(&img), &path).unwrap(), img);
        let mut short = encode_ppm(&img);
        short.pop();
        let e = ppm_from_bytes(short, &path).unwrap_err().to_string();
        assert!(e.contains("115 bytes"), "{e}");
    }

    #[test]
    fn headers_with_comments_parse() {
        let h = parse_header(b"P6 # made by hand\n 12\t3\n#x\n255\nrest").unwrap();
        assert_eq!((h.width, h.height), (12, 3));
        assert_eq!(
            &b"P6 # made by hand\n 12\t3\n#x\n255\nrest"[h.len..],
            b"rest"
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        assert!(parse_header(b"P3\n1 1\n255\n").unwrap_err().contains("P6"));
        assert!(parse_header(b"P6\n1 1\n65535\n")
            .unwrap_err()
            .contains("65535"));
        assert!(parse_header(b"P6\n0 4\n255\n")
            .unwrap_err()
            .contains("no pixels"));
        assert!(parse_header(b"P6\n4\n").unwrap_err().contains("height"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.ppm");
        std::fs::write(&path, b"P6\n4 4\n255\n0123").unwrap();
        let e = read_ppm(&path, Vec::new()).unwrap_err().to_string();
        assert!(e.contains("15 bytes") && e.contains("has 59"), "{e}");
    }
}
