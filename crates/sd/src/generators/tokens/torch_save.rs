//! A reader of `torch.save` files (the zip format of torch >= 1.6) holding plain data and
//! tensors: dicts, lists, tuples, strings, numbers and CPU tensors, such as Diff-Mix's
//! `learned_embeds-steps-last.bin` or diffusers' `learned_embeds.bin`.
//!
//! The file is a zip archive `<name>/data.pkl` + `<name>/data/<key>` (raw little-endian
//! storages). `data.pkl` is a pickle (protocol 2; protocol 4's opcodes are read too) that this
//! module runs on a small stack machine which knows only what such files use: containers,
//! scalars, `GLOBAL` + `REDUCE` of `torch._utils._rebuild_tensor_v2` / `_rebuild_tensor` /
//! `_rebuild_parameter` and `collections.OrderedDict`, and storages named by `BINPERSID`. Nothing
//! is imported or executed: any other callable becomes an opaque [`Value::Object`]. Every read is
//! bounds-checked and every tensor must lie inside its storage. The legacy
//! (pre-1.6, non-zip) format is refused with a message.
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// Most bytes one pickle or storage entry may take (token files are kilobytes).
const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// A value of the pickle.
#[derive(Debug)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// A float.
    Float(f64),
    /// A `str`.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list.
    List(Vec<Value>),
    /// A dict (also `OrderedDict`), in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A tensor, on the CPU, in its stored dtype.
    Tensor(Tensor),
    /// A tensor's record (storage, offset, size, stride) before its storage is read: only
    /// while reading; [`read`] returns [`Value::Tensor`] in its place.
    TensorRecord(TensorRecord),
    /// A callable named by `GLOBAL` (`module`, `name`).
    Global(String, String),
    /// A storage named by `BINPERSID`, not yet wrapped in a tensor.
    Storage(Storage),
    /// A call this reader does not know (`module.name(...)`), kept opaque.
    Object(String),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entry of a dict with string key `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn shallow_clone(&self) -> Value {
        match self {
            Value::None => Value::None,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Float(*f),
            Value::Str(s) => Value::Str(s.clone()),
            Value::Bytes(b) => Value::Bytes(b.clone()),
            Value::Tuple(v) => Value::Tuple(v.iter().map(Value::shallow_clone).collect()),
            Value::List(v) => Value::List(v.iter().map(Value::shallow_clone).collect()),
            Value::Dict(v) => Value::Dict(
                v.iter()
                    .map(|(k, x)| (k.shallow_clone(), x.shallow_clone()))
                    .collect(),
            ),
            Value::Tensor(t) => Value::Tensor(t.shallow_clone()),
            Value::TensorRecord(r) => Value::TensorRecord(r.clone()),
            Value::Global(m, n) => Value::Global(m.clone(), n.clone()),
            Value::Storage(s) => Value::Storage(s.clone()),
            Value::Object(o) => Value::Object(o.clone()),
        }
    }
}

/// A storage named in the pickle: its record key, element type and element count.
#[derive(Debug, Clone)]
pub struct Storage {
    key: String,
    kind: Kind,
    numel: i64,
}

/// The libtorch kind of a `torch.<Name>Storage`.
fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

/// Reads a `torch.save` file into its top-level [`Value`], tensors on the CPU in their stored
/// dtype.
///
/// # Errors
/// [`Error::Weights`] naming the file: unreadable, not a zip `torch.save` (the legacy format is
/// named), a pickle this reader cannot run, or a tensor outside its storage.
pub fn read(path: &Path) -> Result<Value> {
    let fail = |message: String| Error::Weights {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut magic = [0u8; 4];
    let is_zip = (&file).read_exact(&mut magic).is_ok() && magic == *b"PK\x03\x04";
    if !is_zip {
        return Err(fail(
            "not a zip torch.save file (a file saved by torch < 1.6 or with \
             _use_new_zipfile_serialization=False: load and save it again with a newer torch)"
                .into(),
        ));
    }
    let mut zip = zip::ZipArchive::new(file).map_err(|e| fail(format!("bad zip archive: {e}")))?;
    let pkl: Vec<String> = zip
        .file_names()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .map(str::to_string)
        .collect();
    let [pkl] = pkl.as_slice() else {
        return Err(fail(format!(
            "expected one <name>/data.pkl in the archive, found {}",
            pkl.len()
        )));
    };
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    if let Ok(order) = read_entry(&mut zip, &format!("{prefix}byteorder")) {
        if order != b"little" {
            return Err(fail(format!(
                "byte order {:?}: only little-endian files are read",
                String::from_utf8_lossy(&order)
            )));
        }
    }
    let bytes = read_entry(&mut zip, pkl).map_err(&fail)?;
    let value = Machine::new(&bytes)
        .run()
        .map_err(|e| fail(format!("data.pkl: {e}")))?;
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    materialise(value, &mut |s: &Storage| {
        if let Some(t) = storages.get(&s.key) {
            return Ok(t.shallow_clone());
        }
        let raw = read_entry(&mut zip, &format!("{prefix}data/{}", s.key))?;
        let elem = s.kind.elt_size_in_bytes();
        if raw.len() as i64 != s.numel * elem as i64 {
            return Err(format!(
                "storage {} holds {} bytes, expected {} elements of {elem} bytes",
                s.key,
                raw.len(),
                s.numel
            ));
        }
        let t = Tensor::f_from_data_size(&raw, &[s.numel], s.kind).map_err(|e| e.to_string())?;
        storages.insert(s.key.clone(), t.shallow_clone());
        Ok(t)
    })
    .map_err(fail)
}

fn read_entry<R: std::io::Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
) -> Step<Vec<u8>> {
    let entry = zip
        .by_name(name)
        .map_err(|e| format!("archive entry {name}: {e}"))?;
    if entry.size() > MAX_ENTRY_BYTES {
        return Err(format!("archive entry {name} is {} bytes", entry.size()));
    }
    let mut out = Vec::with_capacity(entry.size() as usize);
    entry
        .take(MAX_ENTRY_BYTES)
        .read_to_end(&mut out)
        .map_err(|e| format!("archive entry {name}: {e}"))?;
    Ok(out)
}

/// A tensor's record: `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
#[derive(Debug, Clone)]
pub struct TensorRecord {
    storage: Storage,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

impl TensorRecord {
    /// The record of `_rebuild_tensor*`'s first four arguments.
    fn from_args(args: &[Value]) -> Step<TensorRecord> {
        let ints = |v: &Value| -> Option<Vec<i64>> {
            match v {
                Value::Tuple(xs) => xs
                    .iter()
                    .map(|x| match x {
                        Value::Int(i) => Some(*i),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            }
        };
        match args {
            [Value::Storage(s), Value::Int(offset), size, stride, ..] => Ok(TensorRecord {
                storage: s.clone(),
                offset: *offset,
                size: ints(size).ok_or("tensor size is not a tuple of ints")?,
                stride: ints(stride).ok_or("tensor stride is not a tuple of ints")?,
            }),
            _ => Err("malformed tensor record".into()),
        }
    }
}

/// Replaces every [`Value::TensorRecord`] by its tensor, reading storages with `load`.
fn materialise(value: Value, load: &mut dyn FnMut(&Storage) -> Step<Tensor>) -> Step<Value> {
    let all = |items: Vec<Value>, load: &mut dyn FnMut(&Storage) -> Step<Tensor>| {
        items
            .into_iter()
            .map(|v| materialise(v, load))
            .collect::<Step<Vec<_>>>()
    };
    Ok(match value {
        Value::TensorRecord(r) => {
            let storage = load(&r.storage)?;
            Value::Tensor(view(&storage, &r)?)
        }
        Value::Tuple(items) => Value::Tuple(all(items, load)?),
        Value::List(items) => Value::List(all(items, load)?),
        Value::Dict(items) => Value::Dict(
            items
                .into_iter()
                .map(|(k, v)| Ok((materialise(k, load)?, materialise(v, load)?)))
                .collect::<Step<_>>()?,
        ),
        other => other,
    })
}

/// The tensor `p` describes, as a contiguous copy out of `storage`, after checking that it lies
/// inside it.
fn view(storage: &Tensor, p: &TensorRecord) -> Step<Tensor> {
    let numel = storage.size().first().copied().unwrap_or(0);
    if p.size.len() != p.stride.len() || p.size.iter().chain(&p.stride).any(|&x| x < 0) {
        return Err(format!(
            "tensor size {:?} / stride {:?} are not valid",
            p.size, p.stride
        ));
    }
    let empty = p.size.contains(&0);
    let last = p
        .size
        .iter()
        .zip(&p.stride)
        .try_fold(p.offset, |acc, (&n, &s)| {
            (n.max(1) - 1)
                .checked_mul(s)
                .and_then(|x| acc.checked_add(x))
        });
    match last {
        Some(last) if p.offset >= 0 && (empty || last < numel) => {}
        _ => {
            return Err(format!(
                "tensor (offset {}, size {:?}, stride {:?}) lies outside its storage of {numel}",
                p.offset, p.size, p.stride
            ))
        }
    }
    storage
        .f_as_strided(p.size.as_slice(), p.stride.as_slice(), p.offset)
        .and_then(|t| t.f_contiguous())
        .map_err(|e| e.to_string())
}

/// How deeply containers may nest (token files nest 3 deep; a bound keeps the recursive walks
/// and drops of a crafted file shallow).
const MAX_DEPTH: u32 = 64;

/// How many values `BINGET` may copy out of the memo in all (a crafted file could otherwise
/// double a structure with every byte).
const MAX_COPIED: usize = 1 << 22;

/// A value on the machine's stack with its nesting depth (0 for scalars).
#[derive(Debug)]
struct Entry {
    value: Value,
    depth: u32,
}

/// The nesting depth of a container of `items`, if within [`MAX_DEPTH`].
fn depth_of(items: &[Entry]) -> Step<u32> {
    let d = 1 + items.iter().map(|e| e.depth).max().unwrap_or(0);
    if d > MAX_DEPTH {
        return Err(format!("containers nested more than {MAX_DEPTH} deep"));
    }
    Ok(d)
}

/// The number of values in `v`, counting until `limit`.
fn count(v: &Value, limit: usize) -> usize {
    let mut n = 1;
    let children: Box<dyn Iterator<Item = &Value>> = match v {
        Value::Tuple(xs) | Value::List(xs) => Box::new(xs.iter()),
        Value::Dict(kv) => Box::new(kv.iter().flat_map(|(k, v)| [k, v])),
        _ => Box::new(std::iter::empty()),
    };
    for c in children {
        if n > limit {
            break;
        }
        n += count(c, limit - n);
    }
    n
}

/// The pickle stack machine.
struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Entry>,
    marks: Vec<usize>,
    memo: HashMap<u32, Entry>,
    /// Values still allowed to be copied out of the memo.
    copy_budget: usize,
}

type Step<T> = std::result::Result<T, String>;

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Machine {
            data,
            pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            copy_budget: MAX_COPIED,
        }
    }

    fn take(&mut self, n: usize) -> Step<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Step<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Step<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Step<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn line(&mut self) -> Step<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or("unterminated line")?;
        let s = String::from_utf8(rest[..n].to_vec()).map_err(|e| e.to_string())?;
        self.pos += n + 1;
        Ok(s)
    }

    fn text(&mut self, n: usize) -> Step<String> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|e| e.to_string())
    }

    /// Pushes a scalar (or an empty container).
    fn push(&mut self, value: Value) {
        let depth = u32::from(matches!(
            value,
            Value::Tuple(_) | Value::List(_) | Value::Dict(_)
        ));
        self.stack.push(Entry { value, depth });
    }

    fn pop(&mut self) -> Step<Entry> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("pop across a mark".into());
        }
        self.stack.pop().ok_or_else(|| "stack underflow".into())
    }

    fn pop_mark(&mut self) -> Step<Vec<Entry>> {
        let m = self.marks.pop().ok_or("no mark")?;
        if m > self.stack.len() {
            return Err("mark above the stack".into());
        }
        Ok(self.stack.split_off(m))
    }

    /// Pushes a container made of `items` by `make`.
    fn push_container(
        &mut self,
        items: Vec<Entry>,
        make: impl FnOnce(Vec<Value>) -> Step<Value>,
    ) -> Step<()> {
        let depth = depth_of(&items)?;
        let value = make(items.into_iter().map(|e| e.value).collect())?;
        self.stack.push(Entry { value, depth });
        Ok(())
    }

    /// Adds `items` to the container on top of the stack with `add`.
    fn extend_top(
        &mut self,
        items: Vec<Entry>,
        add: impl FnOnce(&mut Value, Vec<Value>) -> Step<()>,
    ) -> Step<()> {
        let depth = depth_of(&items)?;
        let top = self.stack.last_mut().ok_or("empty stack")?;
        add(&mut top.value, items.into_iter().map(|e| e.value).collect())?;
        top.depth = top.depth.max(depth);
        Ok(())
    }

    fn memo_get(&mut self, k: u32) -> Step<()> {
        let e = self.memo.get(&k).ok_or_else(|| format!("memo {k} unset"))?;
        let n = count(&e.value, self.copy_budget);
        if n > self.copy_budget {
            return Err(format!(
                "the memo copies more than {MAX_COPIED} values in all"
            ));
        }
        self.copy_budget -= n;
        let e = Entry {
            value: e.value.shallow_clone(),
            depth: e.depth,
        };
        self.stack.push(e);
        Ok(())
    }

    fn memo_put(&mut self, k: u32) -> Step<()> {
        let e = self.stack.last().ok_or("memo of an empty stack")?;
        let copy = Entry {
            value: e.value.shallow_clone(),
            depth: e.depth,
        };
        self.memo.insert(k, copy);
        Ok(())
    }

    fn run(&mut self) -> Step<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(format!("pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a length hint
                }
                b'.' => return Ok(self.pop()?.value),
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let b = self.take(2)?;
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    self.push(Value::Int(i64::from(v)));
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err(format!("integer of {n} bytes"));
                    }
                    let mut v: i64 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= i64::from(x) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Value::Float(f64::from_be_bytes(a)));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.text(n)?;
                    self.push(Value::Str(s));
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let s = self.text(n)?;
                    self.push(Value::Str(s));
                }
                0x8d => {
                    let n = usize::try_from(self.u64()?).map_err(|e| e.to_string())?;
                    let s = self.text(n)?;
                    self.push(Value::Str(s));
                }
                b'T' | b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                b'U' | b'C' => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                b'}' => self.push(Value::Dict(Vec::new())),
                b']' => self.push(Value::List(Vec::new())),
                b')' => self.push(Value::Tuple(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push_container(items, |v| Ok(Value::Dict(pairs(v)?)))?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_container(items, |v| Ok(Value::List(v)))?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_container(items, |v| Ok(Value::Tuple(v)))?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return Err("stack underflow".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push_container(items, |v| Ok(Value::Tuple(v)))?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_top(vec![v], |top, v| match top {
                        Value::List(l) => {
                            l.extend(v);
                            Ok(())
                        }
                        _ => Err("APPEND to a non-list".into()),
                    })?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, |top, v| match top {
                        Value::List(l) => {
                            l.extend(v);
                            Ok(())
                        }
                        _ => Err("APPENDS to a non-list".into()),
                    })?;
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let v = self.pop()?;
                        let k = self.pop()?;
                        vec![k, v]
                    } else {
                        self.pop_mark()?
                    };
                    self.extend_top(items, |top, v| match top {
                        Value::Dict(d) => {
                            d.extend(pairs(v)?);
                            Ok(())
                        }
                        _ => Err("SETITEM on a non-dict".into()),
                    })?;
                }
                b'q' => {
                    let k = u32::from(self.u8()?);
                    self.memo_put(k)?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k = u32::try_from(self.memo.len()).map_err(|e| e.to_string())?;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = u32::from(self.u8()?);
                    self.memo_get(k)?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(module, name));
                }
                0x93 => {
                    let name = self.pop()?.value;
                    let module = self.pop()?.value;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.push(Value::Global(m, n)),
                        _ => return Err("STACK_GLOBAL of non-strings".into()),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?.value;
                    self.push(persistent(pid)?);
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?.value;
                    let depth = args.depth;
                    let value = reduce(callable, args.value)?;
                    self.stack.push(Entry { value, depth });
                }
                b'b' => {
                    // BUILD: an object's state; the values this reader makes have none to set
                    // (OrderedDict's is empty, tensors' are their hooks).
                    self.pop()?;
                }
                other => {
                    return Err(format!(
                        "pickle opcode 0x{other:02x} at byte {} is not read",
                        self.pos - 1
                    ))
                }
            }
        }
    }
}

fn pairs(items: Vec<Value>) -> Step<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of dict items".into());
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// `BINPERSID` of `('storage', torch.<Name>Storage, key, location, numel)`.
fn persistent(pid: Value) -> Step<Value> {
    let Value::Tuple(items) = pid else {
        return Err("persistent id is not a tuple".into());
    };
    match items.as_slice() {
        [Value::Str(tag), Value::Global(module, name), Value::Str(key), Value::Str(_location), Value::Int(numel), ..]
            if tag == "storage" =>
        {
            let kind = storage_kind(name)
                .filter(|_| module == "torch")
                .ok_or_else(|| format!("storage type {module}.{name} is not read"))?;
            if *numel < 0 {
                return Err(format!("storage of {numel} elements"));
            }
            Ok(Value::Storage(Storage {
                key: key.clone(),
                kind,
                numel: *numel,
            }))
        }
        _ => Err("persistent id is not a storage record".into()),
    }
}

/// `REDUCE` / `NEWOBJ` of a known callable; anything else is an opaque object.
fn reduce(callable: Value, args: Value) -> Step<Value> {
    let Value::Global(module, name) = callable else {
        return Err("REDUCE of a value that is not a global".into());
    };
    let Value::Tuple(mut args) = args else {
        return Err(format!("{module}.{name}: arguments are not a tuple"));
    };
    Ok(match (module.as_str(), name.as_str()) {
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
            Value::TensorRecord(TensorRecord::from_args(&args)?)
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state")
            if !args.is_empty() =>
        {
            args.swap_remove(0)
        }
        ("collections", "OrderedDict") => match args.pop() {
            None => Value::Dict(Vec::new()),
            Some(Value::List(items)) => Value::Dict(
                items
                    .into_iter()
                    .map(|p| match p {
                        Value::Tuple(mut kv) if kv.len() == 2 => {
                            let v = kv.pop().unwrap_or(Value::None);
                            let k = kv.pop().unwrap_or(Value::None);
                            Ok((k, v))
                        }
                        _ => Err("OrderedDict item is not a pair".to_string()),
                    })
                    .collect::<Step<_>>()?,
            ),
            Some(_) => Value::Object(format!("{module}.{name}")),
        },
        _ => Value::Object(format!("{module}.{name}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pickle of the Diff-Mix fixture (tools/parity/make_torch_tokens_fixture.py).
    fn diffmix_pickle() -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/torch_tokens/diffmix/learned_embeds-steps-last.bin");
        let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
        read_entry(&mut zip, "learned_embeds-steps-last/data.pkl").unwrap()
    }

    fn run(bytes: &[u8]) -> Step<Value> {
        Machine::new(bytes).run()
    }

    #[test]
    fn the_pickle_runs_to_a_dict_of_tensor_records() {
        let v = run(&diffmix_pickle()).unwrap();
        let Some(Value::Dict(embeds)) = v.get("learned_embeds_dict") else {
            panic!("{v:?}")
        };
        let offsets: Vec<i64> = embeds
            .iter()
            .map(|(_, r)| match r {
                Value::TensorRecord(r) => r.offset,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(offsets, [0, 16, 32]);
        assert_eq!(
            v.get("name2placeholder")
                .and_then(|d| d.get("Laysan/Albatross"))
                .and_then(Value::as_str),
            Some("<class_1>")
        );
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_not_a_panic() {
        let good = diffmix_pickle();
        for n in 0..good.len() {
            assert!(run(&good[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut changed = 0;
        for i in 0..good.len() {
            for x in [0x00, 0xff, b'R', b'Q', b'h'] {
                let mut b = good.clone();
                b[i] = x;
                changed += usize::from(run(&b).is_err());
            }
        }
        assert!(
            changed > good.len(),
            "{changed} of {} flips refused",
            good.len() * 5
        );
    }

    #[test]
    fn deep_nesting_and_memo_doubling_are_refused() {
        // 10 000 nested lists: ] ] ] ... then APPEND each into the one below.
        let mut deep = vec![0x80, 2];
        deep.extend(std::iter::repeat_n(b']', 10_000));
        deep.extend(std::iter::repeat_n(b'a', 9_999));
        deep.push(b'.');
        let e = run(&deep).unwrap_err();
        assert!(e.contains("nested"), "{e}");
        // A list put in the memo, then doubled 40 times: [l, l] -> memo -> [m, m] -> ...
        let mut doubling = vec![0x80, 2, b']', b'q', 0];
        for _ in 0..40 {
            doubling.extend([b'h', 0, b'h', 0, 0x86, b'q', 0]);
        }
        doubling.push(b'.');
        let e = run(&doubling).unwrap_err();
        assert!(e.contains("nested") || e.contains("copies"), "{e}");
        // Shallow growth (four copies a level, 30 levels) hits the copy budget first.
        let mut wide = vec![0x80, 2, b']', b'q', 0];
        for _ in 0..30 {
            wide.extend([b'(', b'h', 0, b'h', 0, b'h', 0, b'h', 0, b'l', b'q', 0]);
        }
        wide.push(b'.');
        let e = run(&wide).unwrap_err();
        assert!(e.contains("copies"), "{e}");
    }

    #[test]
    fn a_tensor_outside_its_storage_is_refused() {
        let storage = Tensor::zeros([10], (Kind::Float, tch::Device::Cpu));
        let record = |offset, size: Vec<i64>, stride: Vec<i64>| TensorRecord {
            storage: Storage {
                key: "0".into(),
                kind: Kind::Float,
                numel: 10,
            },
            offset,
            size,
            stride,
        };
        assert!(view(&storage, &record(8, vec![2], vec![1])).is_ok());
        assert!(view(&storage, &record(9, vec![2], vec![1])).is_err());
        assert!(view(&storage, &record(0, vec![3, 4], vec![4, 1])).is_err());
        assert!(view(&storage, &record(-1, vec![1], vec![1])).is_err());
        assert!(view(&storage, &record(0, vec![2], vec![-1])).is_err());
        assert!(view(&storage, &record(0, vec![0, 5], vec![5, 1])).is_ok());
        assert!(view(&storage, &record(0, vec![i64::MAX, 2], vec![i64::MAX, 1])).is_err());
    }
}
