//! The contract's models as plain data (built in Python from the pydantic models by
//! `ccod_fs.sink.native_spec`, so the contract stays the single source): per field its kind,
//! nullability, default and constraints, exactly what `ccod_fs.sink.fastcheck` compiles, and
//! per `ts` field the contract's timestamp range in epoch ms (the store's DateTime64 range).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::json::Value;

pub enum Kind {
    Str,
    Int,
    Bool,
    Ts,
    Uuid,
    Lit(Vec<String>),
    Model(Model),
}

pub struct Field {
    pub name: String,
    pub kind: Kind,
    pub nullable: bool,
    pub required: bool,
    pub default: Value<'static>,
    pub ge: Option<i128>,
    pub gt: Option<i128>,
    pub le: Option<i128>,
    pub lt: Option<i128>,
    pub min_len: Option<usize>,
    pub max_len: Option<usize>,
    pub tenant: bool,
    /// `ts` fields: the contract's range, epoch ms, inclusive.
    pub ts_range: Option<(i64, i64)>,
}

pub struct Model {
    pub fields: Vec<Field>,
}

fn default_of(v: &Bound<'_, PyAny>) -> PyResult<Value<'static>> {
    if v.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = v.cast::<pyo3::types::PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if let Ok(i) = v.extract::<i64>() {
        Ok(Value::Int(i as i128))
    } else if let Ok(s) = v.extract::<String>() {
        Ok(Value::Str(s.into()))
    } else {
        Err(PyValueError::new_err("unsupported default in the sink spec"))
    }
}

fn opt_int(v: Bound<'_, PyAny>) -> PyResult<Option<i128>> {
    if v.is_none() {
        Ok(None)
    } else {
        Ok(Some(v.extract::<i128>()?)) // up to u64::MAX (event_sequence's UInt64 column)
    }
}

pub fn model_of(spec: &Bound<'_, PyAny>) -> PyResult<Model> {
    let mut fields = Vec::new();
    for item in spec.try_iter()? {
        let item = item?;
        let t = item.cast::<PyTuple>()?;
        if t.len() != 15 {
            return Err(PyValueError::new_err("a sink spec field is a 15-tuple"));
        }
        let kind_name: String = t.get_item(1)?.extract()?;
        let kind = match kind_name.as_str() {
            "str" => Kind::Str,
            "int" => Kind::Int,
            "bool" => Kind::Bool,
            "ts" => Kind::Ts,
            "uuid" => Kind::Uuid,
            "lit" => Kind::Lit(t.get_item(5)?.extract()?),
            "model" => Kind::Model(model_of(&t.get_item(6)?)?),
            other => return Err(PyValueError::new_err(format!("unknown field kind {other}"))),
        };
        if matches!(kind, Kind::Ts) && t.get_item(14)?.is_none() {
            return Err(PyValueError::new_err("a ts field of the sink spec needs its range"));
        }
        let min_len = t.get_item(11)?;
        let max_len = t.get_item(12)?;
        fields.push(Field {
            name: t.get_item(0)?.extract()?,
            kind,
            nullable: t.get_item(2)?.extract()?,
            required: t.get_item(3)?.extract()?,
            default: default_of(&t.get_item(4)?)?,
            ge: opt_int(t.get_item(7)?)?,
            gt: opt_int(t.get_item(8)?)?,
            le: opt_int(t.get_item(9)?)?,
            lt: opt_int(t.get_item(10)?)?,
            min_len: if min_len.is_none() { None } else { Some(min_len.extract()?) },
            max_len: if max_len.is_none() { None } else { Some(max_len.extract()?) },
            tenant: t.get_item(13)?.extract()?,
            ts_range: t.get_item(14)?.extract()?,
        });
    }
    Ok(Model { fields })
}

/// `{event type: model spec}` -> models by type.
pub fn events_of(spec: &Bound<'_, PyDict>) -> PyResult<Vec<(String, Model)>> {
    let mut out = Vec::new();
    for (k, v) in spec.iter() {
        out.push((k.extract::<String>()?, model_of(&v)?));
    }
    Ok(out)
}
