//! One column of Python values -> its ClickHouse native-format bytes, exactly as
//! clickhouse-driver 0.2.11's `write_column` writes them (state prefix included), for the
//! column types of the sink's tables: (U)Int8..64, String, UUID (canonical text), DateTime64 (epoch
//! ints), each optionally Nullable, and LowCardinality(String / Nullable(String)). `None` for
//! anything else (another type, a value the driver would convert or reject): the caller leaves
//! that column to the driver, so what reaches the server never changes.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

use super::fxhash::FxHashMap;

#[derive(Clone, Copy)]
enum Inner {
    Int(u8, bool), // bytes, signed
    Str,
    Uuid,
    DateTime64,
}

fn strip<'a>(t: &'a str, prefix: &str) -> Option<&'a str> {
    t.strip_prefix(prefix)?.strip_suffix(')')
}

fn inner_of(t: &str) -> Option<Inner> {
    Some(match t {
        "UInt8" => Inner::Int(1, false),
        "UInt16" => Inner::Int(2, false),
        "UInt32" => Inner::Int(4, false),
        "UInt64" => Inner::Int(8, false),
        "Int8" => Inner::Int(1, true),
        "Int16" => Inner::Int(2, true),
        "Int32" => Inner::Int(4, true),
        "Int64" => Inner::Int(8, true),
        "String" => Inner::Str,
        "UUID" => Inner::Uuid,
        _ if t.starts_with("DateTime64(") && t.ends_with(')') => Inner::DateTime64,
        _ => return None,
    })
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn put_str(s: &str, out: &mut Vec<u8>) {
    varint(s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

/// An exact int (or bool, an int subclass, as struct.pack takes it) in range, as LE bytes.
fn put_int(v: &Bound<'_, PyAny>, width: u8, signed: bool, out: &mut Vec<u8>) -> Option<()> {
    if signed {
        let i: i64 = v.extract().ok()?;
        let bits = width as u32 * 8;
        if bits < 64 && (i < -(1i64 << (bits - 1)) || i >= 1i64 << (bits - 1)) {
            return None;
        }
        out.extend_from_slice(&i.to_le_bytes()[..width as usize]);
    } else {
        let u: u64 = v.extract().ok()?;
        if width < 8 && u >= 1u64 << (width as u32 * 8) {
            return None;
        }
        out.extend_from_slice(&u.to_le_bytes()[..width as usize]);
    }
    Some(())
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Canonical 8-4-4-4-12 text (either case) -> the two 64-bit halves, each little-endian.
fn put_uuid(s: &str, out: &mut Vec<u8>) -> Option<()> {
    let b = s.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let mut raw = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if i == 8 || i == 13 || i == 18 || i == 23 {
            i += 1;
            continue;
        }
        raw[n] = hex(b[i])? << 4 | hex(b[i + 1])?;
        n += 1;
        i += 2;
    }
    raw[..8].reverse();
    raw[8..].reverse();
    out.extend_from_slice(&raw);
    Some(())
}

fn text<'a>(v: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    v.cast::<PyString>().ok()?.to_str().ok()
}

/// The driver's data for `inner` (no null map); `None` items get the type's default.
fn put_value(inner: Inner, v: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Option<()> {
    if v.is_none() {
        match inner {
            Inner::Int(w, _) => out.extend(std::iter::repeat_n(0u8, w as usize)),
            Inner::Str => out.push(0),
            Inner::DateTime64 => out.extend_from_slice(&[0u8; 8]),
            Inner::Uuid => return None,
        }
        return Some(());
    }
    match inner {
        Inner::Int(w, signed) => put_int(v, w, signed, out),
        Inner::Str => {
            put_str(text(v)?, out);
            Some(())
        }
        Inner::Uuid => put_uuid(text(v)?, out),
        Inner::DateTime64 => {
            // the driver passes ints through as raw ticks; datetimes it converts (left to it)
            if !v.is_instance_of::<pyo3::types::PyInt>() {
                return None;
            }
            put_int(v, 8, true, out)
        }
    }
}

fn plain(inner: Inner, nullable: bool, items: &[Bound<'_, PyAny>]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(items.len() * 24);
    if nullable {
        out.extend(items.iter().map(|v| v.is_none() as u8));
    } else if items.iter().any(|v| v.is_none()) {
        return None; // the driver decides what a None in a non-Nullable column means
    }
    for v in items {
        put_value(inner, v, &mut out)?;
    }
    Some(out)
}

/// LowCardinality(String) / LowCardinality(Nullable(String)): `write_state_prefix` + `_write_data`.
fn low_cardinality(nullable: bool, items: &[Bound<'_, PyAny>]) -> Option<Vec<u8>> {
    let mut index: Vec<&str> = Vec::new();
    let mut key_of: FxHashMap<&str, u64> = FxHashMap::default();
    let mut keys: Vec<u64> = Vec::with_capacity(items.len());
    let base = nullable as u64; // key 0 is NULL when nullable
    for v in items {
        if v.is_none() {
            if !nullable {
                return None;
            }
            keys.push(0);
            continue;
        }
        let s = text(v)?;
        let key = *key_of.entry(s).or_insert_with(|| {
            index.push(s);
            index.len() as u64 - 1
        });
        keys.push(key + base);
    }
    let mut out = Vec::with_capacity(16 + items.len() * 2);
    out.extend_from_slice(&1i64.to_le_bytes()); // KeysSerializationVersion
    let size = index.len() + base as usize;
    if size == 0 {
        return Some(out);
    }
    // the driver: int(log(len(index), 2) / 8) picks the key width (UInt8/16/32/64)
    let int_type = ((size as f64).ln() / 2f64.ln() / 8.0) as i64;
    if !(0..=3).contains(&int_type) {
        return None;
    }
    let width = 1usize << int_type;
    out.extend_from_slice(&((1i64 << 9) | (1i64 << 10) | int_type).to_le_bytes());
    out.extend_from_slice(&(size as i64).to_le_bytes());
    if nullable {
        out.push(0); // the NULL entry: ''
    }
    for s in &index {
        put_str(s, &mut out);
    }
    out.extend_from_slice(&(items.len() as i64).to_le_bytes());
    for k in keys {
        out.extend_from_slice(&k.to_le_bytes()[..width]);
    }
    Some(out)
}

/// `encode_column(type_name, values)`: the bytes `write_column` would write, or None.
#[pyfunction]
pub fn encode_column<'py>(py: Python<'py>, type_name: &str, values: &Bound<'py, PyList>) -> Option<Bound<'py, PyBytes>> {
    let items: Vec<Bound<'py, PyAny>> = values.iter().collect();
    let out = if let Some(lc) = strip(type_name, "LowCardinality(") {
        match lc {
            "String" => low_cardinality(false, &items),
            "Nullable(String)" => low_cardinality(true, &items),
            _ => None,
        }
    } else {
        let (nullable, t) = match strip(type_name, "Nullable(") {
            Some(t) => (true, t),
            None => (false, type_name),
        };
        plain(inner_of(t)?, nullable, &items)
    };
    let out = out.or_else(|| {
        PyErr::take(py); // a text that is not valid UTF-8 (surrogates) left an error set
        None
    })?;
    Some(PyBytes::new(py, &out))
}
