//! `text/event-json` body -> [`Headers`], exactly as `decode_json_body` (orjson) would see them.
//!
//! A strict scanner for what FreeSWITCH sends: one object whose values are strings, arrays of
//! strings or null. Keys the normalizer reads are decoded (escapes, surrogate pairs; the last of
//! duplicate keys wins), every other value is only validated. Anything else (broken JSON, invalid
//! UTF-8, control characters, lone surrogates, numbers, nested objects, a missing Event-Name...)
//! goes to the Python decoder: it raises the reference's own `EslDecodeError`, or returns the
//! event whose odd values are then read through Python.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::headers::{key_id, Headers, Value};
use crate::pyfmt;

struct Scanner<'a> {
    s: &'a [u8],
    pos: usize,
}

/// Bytes a string scan must stop at: `"`, `\` and control characters (rejected inside strings).
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

#[inline]
fn hex4(s: &[u8]) -> Option<u32> {
    if s.len() < 4 {
        return None;
    }
    let mut v = 0u32;
    for &c in &s[..4] {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = v * 16 + d as u32;
    }
    Some(v)
}

impl<'a> Scanner<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.s.get(self.pos) {
            if c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Index of the next stop byte (`"`, `\\`, control character) from `i`, or the length.
    #[inline]
    fn run(&self, i: usize) -> usize {
        let s = self.s;
        #[cfg(target_arch = "x86_64")]
        let i = {
            // SSE2 is part of x86_64: 16 bytes per step.
            use std::arch::x86_64::*;
            let mut i = i;
            // SAFETY: unaligned loads of 16 bytes that lie within `s`.
            unsafe {
                let quote = _mm_set1_epi8(b'"' as i8);
                let backslash = _mm_set1_epi8(b'\\' as i8);
                let ctrl_max = _mm_set1_epi8(0x1f);
                while i + 16 <= s.len() {
                    let v = _mm_loadu_si128(s.as_ptr().add(i) as *const __m128i);
                    let hit = _mm_or_si128(
                        _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                        _mm_cmpeq_epi8(_mm_max_epu8(v, ctrl_max), ctrl_max),
                    );
                    let mask = _mm_movemask_epi8(hit) as u32;
                    if mask != 0 {
                        return i + mask.trailing_zeros() as usize;
                    }
                    i += 16;
                }
            }
            i
        };
        let mut i = i;
        while i < s.len() && !STOP[s[i] as usize] {
            i += 1;
        }
        i
    }

    /// One escape after a backslash at `pos`: appends the char (when `out` is given), advances.
    fn escape(&mut self, out: Option<&mut String>) -> Option<()> {
        let s = self.s;
        let c = *s.get(self.pos + 1)?;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(&s[self.pos + 2..])?;
                if (0xDC00..0xE000).contains(&hi) {
                    return None;
                }
                if (0xD800..0xDC00).contains(&hi) {
                    let rest = &s[self.pos + 6..];
                    if rest.len() < 6 || rest[0] != b'\\' || rest[1] != b'u' {
                        return None;
                    }
                    let lo = hex4(&rest[2..])?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    self.pos += 12;
                    if let Some(out) = out {
                        out.push(char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?);
                    }
                    return Some(());
                }
                self.pos += 6;
                if let Some(out) = out {
                    out.push(char::from_u32(hi)?);
                }
                return Some(());
            }
            _ => return None,
        };
        self.pos += 2;
        if let Some(out) = out {
            out.push(ch);
        }
        Some(())
    }

    /// A string value after its opening quote, decoded.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.pos;
        let i = self.run(start);
        let c = *self.s.get(i)?;
        if c == b'"' {
            self.pos = i + 1;
            // SAFETY: the whole body was validated as UTF-8 and `"` is a char boundary.
            return Some(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(&self.s[start..i]) }));
        }
        if c != b'\\' {
            return None;
        }
        let mut out = String::with_capacity(i - start + 16);
        out.push_str(unsafe { std::str::from_utf8_unchecked(&self.s[start..i]) });
        self.pos = i;
        loop {
            self.escape(Some(&mut out))?;
            let from = self.pos;
            let i = self.run(from);
            out.push_str(unsafe { std::str::from_utf8_unchecked(&self.s[from..i.min(self.s.len())]) });
            let c = *self.s.get(i)?;
            self.pos = i;
            if c == b'"' {
                self.pos += 1;
                return Some(Cow::Owned(out));
            }
            if c != b'\\' {
                return None;
            }
        }
    }

    /// A string after its opening quote, only validated.
    fn skip_string(&mut self) -> Option<()> {
        let mut i = self.run(self.pos);
        loop {
            let c = *self.s.get(i)?;
            if c == b'"' {
                self.pos = i + 1;
                return Some(());
            }
            if c != b'\\' {
                return None;
            }
            self.pos = i;
            self.escape(None)?;
            i = self.run(self.pos);
        }
    }

    /// An array of strings after its `[`.
    fn array(&mut self, keep: bool) -> Option<Vec<Cow<'a, str>>> {
        let mut items = Vec::new();
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(items);
        }
        loop {
            if self.peek()? != b'"' {
                return None; // a non-string item: the Python decoder's business
            }
            self.pos += 1;
            if keep {
                items.push(self.string()?);
            } else {
                self.skip_string()?;
            }
            self.ws();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    self.ws();
                }
                b']' => {
                    self.pos += 1;
                    return Some(items);
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self, h: &mut Headers<'a, '_>) -> Option<bool> {
        let mut has_name = false;
        self.ws();
        if self.peek()? != b'{' {
            return None;
        }
        self.pos += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                if self.peek()? != b'"' {
                    return None;
                }
                self.pos += 1;
                let key = self.string()?;
                let id = key_id(key.as_bytes());
                let is_body = id.is_none() && &*key == "_body";
                if id == Some(crate::headers::K::EventName as u8) {
                    has_name = true;
                }
                self.ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.pos += 1;
                self.ws();
                let keep = id.is_some() || is_body;
                match self.peek()? {
                    b'"' => {
                        self.pos += 1;
                        if keep {
                            let v = self.string()?;
                            if is_body {
                                h.body = Some(v);
                            } else {
                                h.set(id.unwrap(), Some(Value::Str(v)));
                            }
                        } else {
                            self.skip_string()?;
                        }
                    }
                    b'[' => {
                        if is_body {
                            return None; // `_body is not a string`: raised by the Python decoder
                        }
                        self.pos += 1;
                        let items = self.array(keep)?;
                        if let Some(id) = id {
                            h.set(id, Some(Value::List(items)));
                        }
                    }
                    b'n' => {
                        if !self.s[self.pos..].starts_with(b"null") {
                            return None;
                        }
                        self.pos += 4;
                        if is_body {
                            h.body = None;
                        } else if let Some(id) = id {
                            h.set(id, None);
                        }
                    }
                    _ => return None,
                }
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.pos += 1;
                        self.ws();
                    }
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.ws();
        if self.pos != self.s.len() {
            return None;
        }
        Some(has_name)
    }
}

/// Fast path; None when the body needs the Python decoder.
/// Whether every byte is ASCII (then the body is valid UTF-8 without a decoder pass).
fn is_ascii(s: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let mut i = 0;
        // SAFETY: SSE2 is part of x86_64; every load reads 16 bytes inside `s`.
        unsafe {
            let mut acc = _mm_setzero_si128();
            while i + 64 <= s.len() {
                let p = s.as_ptr().add(i) as *const __m128i;
                acc = _mm_or_si128(acc, _mm_or_si128(_mm_loadu_si128(p), _mm_loadu_si128(p.add(1))));
                acc = _mm_or_si128(acc, _mm_or_si128(_mm_loadu_si128(p.add(2)), _mm_loadu_si128(p.add(3))));
                i += 64;
            }
            if _mm_movemask_epi8(acc) != 0 {
                return false;
            }
        }
        s[i..].is_ascii()
    }
    #[cfg(not(target_arch = "x86_64"))]
    s.is_ascii()
}

fn scan<'a, 'py>(py: Python<'py>, body: &'a [u8]) -> Option<Headers<'a, 'py>> {
    if !is_ascii(body) {
        std::str::from_utf8(body).ok()?;
    }
    let mut h = Headers::new(py);
    let mut sc = Scanner { s: body, pos: 0 };
    match sc.object(&mut h) {
        Some(true) => Some(h),
        _ => None,
    }
}

/// The headers of one `text/event-json` body, or the Python decoder's `EslDecodeError`.
pub fn decode<'a, 'py>(py: Python<'py>, body: &'a [u8]) -> PyResult<Headers<'a, 'py>> {
    if let Some(h) = scan(py, body) {
        return Ok(h);
    }
    let event = pyfmt::decode_json_body(py, body)?;
    let mut h = Headers::new(py);
    let headers = event.getattr("headers")?;
    let headers = headers.cast::<PyDict>()?;
    for (key, value) in headers.iter() {
        let Ok(key) = key.cast::<PyString>() else { continue };
        let Some(id) = key_id(key.to_str()?.as_bytes()) else { continue };
        h.set(id, from_py(&value)?);
    }
    let body_obj = event.getattr("body")?;
    if !body_obj.is_none() {
        h.body = Some(Cow::Owned(body_obj.extract::<String>()?));
    }
    Ok(h)
}

fn from_py<'a>(value: &Bound<'_, PyAny>) -> PyResult<Option<Value<'a>>> {
    if value.is_none() {
        return Ok(None);
    }
    if value.is_exact_instance_of::<PyString>() {
        return Ok(Some(Value::Str(Cow::Owned(value.extract::<String>()?))));
    }
    if value.is_exact_instance_of::<PyList>() {
        let list = value.cast::<PyList>()?;
        if list.iter().all(|item| item.is_exact_instance_of::<PyString>()) {
            let mut items = Vec::with_capacity(list.len());
            for item in list.iter() {
                items.push(Cow::Owned(item.extract::<String>()?));
            }
            return Ok(Some(Value::List(items)));
        }
    }
    Ok(Some(Value::Py(value.clone().unbind())))
}
