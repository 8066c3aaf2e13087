//! Validation of a parsed event against its model, deciding exactly as the general check of
//! `ccod_fs.sink.fastcheck` does (which the full-shape check equals): extra keys, missing
//! required fields, nulls, exact JSON types, constraints, canonical UUIDs and `...Z` timestamps
//! within the contract's range.
//! The result is the event's fields in model order, defaults filled, timestamps as epoch ms.

use std::borrow::Cow;

use super::json::Value;
use super::schema::{Field, Kind, Model};
use super::timefmt::{is_uuid, ts_ms};

pub struct Reject;

/// A checked object: its model's fields in order (timestamps now `Int` epoch ms).
pub type Checked<'a> = Vec<(Cow<'a, str>, Value<'a>)>;

pub fn check_model<'s, 'a>(model: &'s Model, items: &[(Cow<'a, str>, Value<'a>)]) -> Result<Checked<'s>, Reject>
where
    'a: 's,
{
    for (k, _) in items {
        if !model.fields.iter().any(|f| f.name == *k) {
            return Err(Reject); // extra key
        }
    }
    let mut out = Vec::with_capacity(model.fields.len());
    for f in &model.fields {
        let v = match items.iter().find(|(k, _)| *k == f.name) {
            None if f.required => return Err(Reject),
            None => f.default.clone(),
            Some((_, Value::Null)) if f.nullable => Value::Null,
            Some((_, v)) => check_value(f, v)?,
        };
        out.push((Cow::Borrowed(f.name.as_str()), v));
    }
    Ok(out)
}

fn check_value<'s, 'a>(f: &'s Field, v: &Value<'a>) -> Result<Value<'s>, Reject>
where
    'a: 's,
{
    match (&f.kind, v) {
        (Kind::Str, Value::Str(s)) => {
            if let Some(n) = f.min_len {
                if s.chars().count() < n {
                    return Err(Reject);
                }
            }
            if let Some(n) = f.max_len {
                if s.chars().count() > n {
                    return Err(Reject);
                }
            }
            if f.tenant && !is_tenant_pattern(s) {
                return Err(Reject);
            }
            Ok(Value::Str(s.clone()))
        }
        (Kind::Int, Value::Int(i)) => {
            let i = *i;
            if f.ge.is_some_and(|c| i < c) || f.gt.is_some_and(|c| i <= c) || f.le.is_some_and(|c| i > c)
                || f.lt.is_some_and(|c| i >= c)
            {
                return Err(Reject);
            }
            Ok(Value::Int(i))
        }
        (Kind::Bool, Value::Bool(b)) => Ok(Value::Bool(*b)),
        (Kind::Ts, Value::Str(s)) => {
            // the contract's range (epoch ms, inclusive): what a DateTime64(3) / UInt64-ms column holds
            let ms = ts_ms(s).ok_or(Reject)?;
            if f.ts_range.is_some_and(|(lo, hi)| ms < lo || ms > hi) {
                return Err(Reject);
            }
            Ok(Value::Int(ms as i128))
        }
        (Kind::Uuid, Value::Str(s)) if is_uuid(s) => Ok(Value::Str(s.clone())),
        (Kind::Lit(allowed), Value::Str(s)) if allowed.iter().any(|a| a == s) => Ok(Value::Str(s.clone())),
        (Kind::Model(m), Value::Obj(items)) => Ok(Value::Obj(check_model(m, items)?)),
        _ => Err(Reject),
    }
}

/// `^[A-Za-z0-9][A-Za-z0-9_.-]*$` (the contract's tenant id pattern) on a text without newline.
fn is_tenant_pattern(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}
