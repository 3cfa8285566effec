//! A minimal reader for MATLAB v5 `.mat` files (the format of the Stanford Cars devkit).
//!
//! Supports what annotation files use: numeric arrays of every class (read as `f64`, real
//! part only), char arrays, cell arrays and struct arrays, stored plainly (`miMATRIX`) or
//! zlib-compressed (`miCOMPRESSED`), in either byte order. Objects and sparse arrays are
//! returned as [`MatValue::Unsupported`]. Reference: MathWorks, "MAT-File Format", R2019b,
//! chapter 1 ("Level 5 MAT-File Format").
use crate::error::{Error, Result};
use flate2::read::ZlibDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

const HEADER_LEN: usize = 128;
const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;
const MX_CELL: u8 = 1;
const MX_STRUCT: u8 = 2;
const MX_CHAR: u8 = 4;
const MX_FIRST_NUMERIC: u8 = 6;
const MX_LAST_NUMERIC: u8 = 15;

/// A value stored in a MAT file.
#[derive(Debug, Clone, PartialEq)]
pub enum MatValue {
    /// A numeric or logical array, column-major, real part only.
    Numeric {
        /// Dimensions.
        dims: Vec<usize>,
        /// Values in column-major order.
        data: Vec<f64>,
    },
    /// A char array, as its rows.
    Char {
        /// Dimensions.
        dims: Vec<usize>,
        /// One string per row.
        rows: Vec<String>,
    },
    /// A cell array, column-major.
    Cell {
        /// Dimensions.
        dims: Vec<usize>,
        /// The cells.
        items: Vec<MatValue>,
    },
    /// A struct array: `items[element][field]`, elements in column-major order.
    Struct {
        /// Dimensions.
        dims: Vec<usize>,
        /// Field names.
        fields: Vec<String>,
        /// Field values per element.
        items: Vec<Vec<MatValue>>,
    },
    /// An array class this reader does not decode (object, sparse, ...).
    Unsupported {
        /// The MATLAB array class number.
        class: u8,
    },
}

impl MatValue {
    /// The single number of a 1×1 numeric array.
    pub fn as_scalar(&self) -> Option<f64> {
        match self {
            MatValue::Numeric { data, .. } if data.len() == 1 => data.first().copied(),
            _ => None,
        }
    }

    /// The text of a one-row char array.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MatValue::Char { rows, .. } if rows.len() == 1 => rows.first().map(String::as_str),
            _ => None,
        }
    }

    /// Field `name` of struct element `element`.
    pub fn field(&self, element: usize, name: &str) -> Option<&MatValue> {
        match self {
            MatValue::Struct { fields, items, .. } => {
                let f = fields.iter().position(|x| x == name)?;
                items.get(element)?.get(f)
            }
            _ => None,
        }
    }

    /// Number of elements (cells, struct elements or numbers).
    pub fn len(&self) -> usize {
        match self {
            MatValue::Numeric { data, .. } => data.len(),
            MatValue::Char { rows, .. } => rows.len(),
            MatValue::Cell { items, .. } => items.len(),
            MatValue::Struct { items, .. } => items.len(),
            MatValue::Unsupported { .. } => 0,
        }
    }

    /// Whether [`MatValue::len`] is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads every top-level variable of the MAT v5 file at `path`, as `(name, value)`.
///
/// # Errors
/// [`Error::Io`] if unreadable, [`Error::Format`] naming the file if it is not a MAT v5 file or
/// is truncated or corrupt.
pub fn read_mat(path: &Path) -> Result<Vec<(String, MatValue)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_mat(&bytes, path)
}

/// Reads variable `name` of the MAT file at `path`.
///
/// # Errors
/// As [`read_mat`], plus [`Error::Format`] if the variable is absent.
pub fn read_mat_variable(path: &Path, name: &str) -> Result<MatValue> {
    read_mat(path)?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .ok_or_else(|| Error::format(path, format!("no variable {name:?}")))
}

/// Parses MAT v5 `bytes` (read from `path`, used in messages).
///
/// # Errors
/// [`Error::Format`] naming `path`.
pub fn parse_mat(bytes: &[u8], path: &Path) -> Result<Vec<(String, MatValue)>> {
    let fail = |reason: &str| Error::format(path, format!("not a readable MAT v5 file: {reason}"));
    let header = bytes
        .get(..HEADER_LEN)
        .ok_or_else(|| fail("shorter than the header"))?;
    let little = match header.get(126..128) {
        Some(b"IM") => true,
        Some(b"MI") => false,
        _ => return Err(fail("no endian indicator")),
    };
    let mut r = Reader::new(bytes, HEADER_LEN, little, path);
    let mut vars = Vec::new();
    while r.pos < bytes.len() {
        let (ty, data) = r.element()?;
        match ty {
            MI_COMPRESSED => {
                let inner = inflate(data, path)?;
                let mut ir = Reader::new(&inner, 0, little, path);
                let (ity, idata) = ir.element()?;
                if ity == MI_MATRIX {
                    vars.push(Reader::new(idata, 0, little, path).matrix()?);
                }
            }
            MI_MATRIX => vars.push(Reader::new(data, 0, little, path).matrix()?),
            _ => {}
        }
    }
    Ok(vars)
}

fn inflate(data: &[u8], path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ZlibDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|e| Error::format(path, format!("corrupt compressed element: {e}")))?;
    Ok(out)
}

/// A cursor over MAT data elements.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    little: bool,
    path: PathBuf,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], pos: usize, little: bool, path: &Path) -> Self {
        Reader {
            buf,
            pos,
            little,
            path: path.to_path_buf(),
        }
    }

    fn truncated(&self) -> Error {
        Error::format(
            &self.path,
            format!("truncated data element at byte {}", self.pos),
        )
    }

    fn u32_at(&self, at: usize) -> Result<u32> {
        let b: [u8; 4] = self
            .buf
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| self.truncated())?;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    /// The next data element `(type, data)`, in small or normal format; moves past its
    /// padding (compressed elements are not padded).
    fn element(&mut self) -> Result<(u32, &'a [u8])> {
        let first = self.u32_at(self.pos)?;
        if first >> 16 != 0 {
            let (ty, n) = (first & 0xFFFF, (first >> 16) as usize);
            let data = self
                .buf
                .get(self.pos + 4..self.pos + 4 + n.min(4))
                .ok_or_else(|| self.truncated())?;
            self.pos += 8;
            return Ok((ty, data));
        }
        let n = self.u32_at(self.pos + 4)? as usize;
        let start = self.pos + 8;
        let data = self
            .buf
            .get(start..start + n)
            .ok_or_else(|| self.truncated())?;
        self.pos = if first == MI_COMPRESSED {
            start + n
        } else {
            start + n.div_ceil(8) * 8
        };
        Ok((first, data))
    }

    /// Parses the body of a `miMATRIX` element into `(name, value)`.
    fn matrix(&mut self) -> Result<(String, MatValue)> {
        if self.buf.is_empty() {
            return Ok((
                String::new(),
                MatValue::Numeric {
                    dims: vec![0, 0],
                    data: vec![],
                },
            ));
        }
        let (_, flags) = self.element()?;
        // The class is the low byte of the first flags word.
        let class = if self.little {
            flags.first()
        } else {
            flags.get(3)
        };
        let class = class.copied().unwrap_or(0);
        let (_, dims_raw) = self.element()?;
        let dims: Vec<usize> = self
            .numbers(MI_INT32, dims_raw)?
            .into_iter()
            .map(|d| d.max(0.0) as usize)
            .collect();
        let (_, name_raw) = self.element()?;
        let name = String::from_utf8_lossy(name_raw).into_owned();
        let count: usize = dims.iter().product();
        let value = match class {
            MX_CELL => MatValue::Cell {
                items: self.sub_matrices(count)?,
                dims,
            },
            MX_STRUCT => self.struct_body(dims, count)?,
            MX_CHAR => {
                let (ty, raw) = if count == 0 {
                    (MI_UINT8, &[][..])
                } else {
                    self.element()?
                };
                MatValue::Char {
                    rows: self.char_rows(ty, raw, &dims)?,
                    dims,
                }
            }
            MX_FIRST_NUMERIC..=MX_LAST_NUMERIC => {
                let (ty, raw) = if count == 0 {
                    (MI_DOUBLE, &[][..])
                } else {
                    self.element()?
                };
                MatValue::Numeric {
                    data: self.numbers(ty, raw)?,
                    dims,
                }
            }
            other => MatValue::Unsupported { class: other },
        };
        Ok((name, value))
    }

    fn sub_matrices(&mut self, count: usize) -> Result<Vec<MatValue>> {
        (0..count)
            .map(|_| {
                let (ty, data) = self.element()?;
                if ty != MI_MATRIX {
                    return Err(Error::format(
                        &self.path,
                        format!("expected miMATRIX, got type {ty}"),
                    ));
                }
                Ok(Reader::new(data, 0, self.little, &self.path).matrix()?.1)
            })
            .collect()
    }

    fn struct_body(&mut self, dims: Vec<usize>, count: usize) -> Result<MatValue> {
        let (_, len_raw) = self.element()?;
        let name_len = self
            .numbers(MI_INT32, len_raw)?
            .first()
            .copied()
            .unwrap_or(0.0) as usize;
        let (_, names_raw) = self.element()?;
        let fields: Vec<String> = if name_len == 0 {
            vec![]
        } else {
            names_raw
                .chunks(name_len)
                .map(|c| {
                    String::from_utf8_lossy(c.split(|&b| b == 0).next().unwrap_or(&[])).into_owned()
                })
                .collect()
        };
        let items = (0..count)
            .map(|_| self.sub_matrices(fields.len()))
            .collect::<Result<_>>()?;
        Ok(MatValue::Struct {
            dims,
            fields,
            items,
        })
    }

    /// Decodes a numeric data element of type `ty` into `f64`s.
    fn numbers(&self, ty: u32, raw: &[u8]) -> Result<Vec<f64>> {
        let le = self.little;
        macro_rules! conv {
            ($t:ty, $n:expr) => {
                raw.chunks_exact($n)
                    .map(|c| {
                        let mut b = [0u8; $n];
                        b.copy_from_slice(c);
                        (if le {
                            <$t>::from_le_bytes(b)
                        } else {
                            <$t>::from_be_bytes(b)
                        }) as f64
                    })
                    .collect()
            };
        }
        Ok(match ty {
            MI_INT8 => raw.iter().map(|&b| f64::from(b as i8)).collect(),
            MI_UINT8 | MI_UTF8 => raw.iter().map(|&b| f64::from(b)).collect(),
            MI_INT16 => conv!(i16, 2),
            MI_UINT16 | MI_UTF16 => conv!(u16, 2),
            MI_INT32 => conv!(i32, 4),
            MI_UINT32 => conv!(u32, 4),
            MI_SINGLE => conv!(f32, 4),
            MI_DOUBLE => conv!(f64, 8),
            MI_INT64 => conv!(i64, 8),
            MI_UINT64 => conv!(u64, 8),
            other => {
                return Err(Error::format(
                    &self.path,
                    format!("unsupported numeric type {other}"),
                ))
            }
        })
    }

    /// Decodes char data (column-major) into rows.
    fn char_rows(&self, ty: u32, raw: &[u8], dims: &[usize]) -> Result<Vec<String>> {
        let chars: Vec<char> = match ty {
            MI_UTF8 | MI_UINT8 | MI_INT8 => String::from_utf8_lossy(raw).chars().collect(),
            _ => self
                .numbers(ty, raw)?
                .into_iter()
                .map(|v| char::from_u32(v as u32).unwrap_or('\u{FFFD}'))
                .collect(),
        };
        let rows = dims.first().copied().unwrap_or(0);
        let cols = chars.len().checked_div(rows).unwrap_or(0);
        Ok((0..rows)
            .map(|r| (0..cols).filter_map(|c| chars.get(c * rows + r)).collect())
            .collect())
    }
}
