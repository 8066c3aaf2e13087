//! `ccod_fs.ingest.esl_values`: typed values out of header strings, and Python's `str.strip()`.

use crate::headers::Value;

/// Sane bounds for FreeSWITCH epoch microseconds (2001-09-09 .. 2286-11-20).
pub const MIN_US: i64 = 1_000_000_000_000_000;
pub const MAX_US: i64 = 9_999_999_999_999_999;

/// `not v or type(v) is not str or not v.isascii() or not v.isdigit() or len(v) > 18` -> None.
#[inline]
pub fn digits(value: Option<&Value<'_>>) -> Option<i64> {
    match value {
        Some(Value::Str(s)) => digits_str(s),
        _ => None,
    }
}

#[inline]
pub fn digits_str(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 18 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v = 0i64;
    for &c in b {
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// `epoch_us()`: µs timestamps within the sane bounds.
#[inline]
pub fn epoch_us(value: Option<&Value<'_>>) -> Option<i64> {
    digits(value).filter(|us| (MIN_US..=MAX_US).contains(us))
}

/// `epoch_s_as_us()`: whole seconds -> µs, within the sane bounds.
#[inline]
pub fn epoch_s_as_us(value: Option<&Value<'_>>) -> Option<i64> {
    digits(value).map(|s| s * 1_000_000).filter(|us| (MIN_US..=MAX_US).contains(us))
}

/// `small_int()`
#[inline]
pub fn small_int(value: Option<&Value<'_>>) -> Option<i64> {
    digits(value)
}

/// The contract's `TenantId` rule: `^[A-Za-z0-9][A-Za-z0-9_.-]*$`, 1..64 chars.
pub fn is_tenant_id(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

/// Python's `str.isspace()` for one char (Rust's White_Space plus the four ASCII separators).
#[inline]
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.strip()`
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// `str.lstrip()`
pub fn py_lstrip(s: &str) -> &str {
    s.trim_start_matches(is_py_space)
}

/// `dial_vars()`: leading `{a=b}` / `[a=b]` / `<a=b>` blocks of a dial string; last wins.
pub fn dial_vars(dial_string: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut rest = py_lstrip(dial_string);
    while let Some(open) = rest.chars().next() {
        let close = match open {
            '{' => '}',
            '[' => ']',
            '<' => '>',
            _ => break,
        };
        let Some(end) = rest.find(close) else { break };
        for item in rest[1..end].split(',') {
            if let Some((name, value)) = item.split_once('=') {
                let name = py_strip(name);
                let value = py_strip(value).to_owned();
                match out.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value,
                    None => out.push((name.to_owned(), value)),
                }
            }
        }
        rest = py_lstrip(&rest[end + 1..]);
    }
    out
}

pub fn var<'v>(vars: &'v [(String, String)], name: &str) -> Option<&'v str> {
    vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// `s[:n]` in code points.
pub fn take_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
