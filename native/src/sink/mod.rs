//! The sink's fast path, natively: Kafka record values -> the rows of one batch, deciding as
//! `ccod_fs.sink.decode.decode_run` + `fastcheck` + `rows.RowBuilder` do. A value it cannot
//! prove valid is handed back (its index) for the Python path to decide; the Python path's
//! rows for it join the same batch through `add_rows` (same dedupe, same order).

mod check;
mod encode;
mod fxhash;
mod json;
mod pyout;
mod rows;
mod schema;
mod timefmt;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use rows::{Cell, Rows};
use schema::Model;

/// The contract's event models (see `ccod_fs.sink.native_spec`); built once, shared by batches.
#[pyclass(module = "ccod_fs_native", frozen)]
pub struct SinkSchema {
    events: Vec<(String, Model)>,
}

fn names_of(v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    v.try_iter()?.map(|n| n?.extract::<String>()).collect()
}

#[pymethods]
impl SinkSchema {
    /// `events`: {event type: model spec}; `tables` and `facts`: rows.TABLES and the fact
    /// columns per call event type, which must equal what this module derives.
    #[new]
    fn new(events: &Bound<'_, PyDict>, tables: &Bound<'_, PyDict>, facts: &Bound<'_, PyDict>) -> PyResult<Self> {
        let expected: [(&str, &[&str]); 3] = [
            ("events_raw", &rows::EVENTS_RAW),
            ("calls_partial", &[rows::CALL_FIXED.as_slice(), rows::CALL_FACTS.as_slice()].concat()),
            ("agent_state_changes", &rows::AGENT_STATE_CHANGES),
        ];
        let given: Vec<(String, Vec<String>)> = tables
            .iter()
            .map(|(k, v)| Ok((k.extract::<String>()?, names_of(&v)?)))
            .collect::<PyResult<_>>()?;
        let same_tables = given.len() == expected.len()
            && given.iter().zip(expected.iter()).all(|((t, cols), (et, ecols))| t == et && cols == ecols);
        let given_facts: Vec<(String, Vec<String>)> = facts
            .iter()
            .map(|(k, v)| Ok((k.extract::<String>()?, names_of(&v)?)))
            .collect::<PyResult<_>>()?;
        let same_facts = given_facts.len() == rows::FACTS.len()
            && given_facts.iter().all(|(t, cols)| rows::FACTS.iter().any(|(ft, fc)| ft == t && fc == cols));
        if !same_tables || !same_facts {
            return Err(PyValueError::new_err("rows.TABLES / rows._FACTS differ from the native sink's derivation"));
        }
        Ok(SinkSchema { events: schema::events_of(events)? })
    }
}

impl SinkSchema {
    fn model(&self, t: &str) -> Option<&Model> {
        self.events.iter().find(|(name, _)| name == t).map(|(_, m)| m)
    }

    /// Parse, check and add one value; false: not provably valid here (hand it back).
    fn take(&self, rows: &mut Rows, value: Option<&[u8]>) -> bool {
        let Some(bytes) = value.filter(|b| !b.is_empty()) else { return false };
        let Ok(text) = std::str::from_utf8(bytes) else { return false };
        let Ok(json::Value::Obj(items)) = json::parse(text) else { return false };
        let field = |name: &str| items.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let Some(json::Value::Str(t)) = field("type") else { return false };
        let Some(model) = self.model(t) else { return false };
        let Some(payload @ json::Value::Obj(_)) = field("payload") else { return false };
        let Ok(checked) = check::check_model(model, &items) else { return false };
        let start = rows.text.len();
        if json::dump(payload, &mut rows.text).is_none() {
            rows.text.truncate(start);
            return false;
        }
        let payload_json = Cell::Str(start, rows.text.len() - start);
        rows.add(&checked, payload_json);
        true
    }
}

const CHUNK: usize = 512;

/// The rows of one batch being filled.
#[pyclass(module = "ccod_fs_native")]
pub struct SinkRows {
    schema: Py<SinkSchema>,
    rows: Option<Rows>,
    finished_events: usize,
}

impl SinkRows {
    fn rows(&mut self) -> PyResult<&mut Rows> {
        self.rows.as_mut().ok_or_else(|| PyRuntimeError::new_err("this batch was already finished"))
    }
}

fn cells(items: Option<&Bound<'_, PyTuple>>) -> Vec<Cell> {
    items.map(|t| t.iter().map(|v| Cell::Obj(v.unbind())).collect()).unwrap_or_default()
}

#[pymethods]
impl SinkRows {
    #[new]
    fn new(schema: Py<SinkSchema>) -> Self {
        SinkRows { schema, rows: Some(Rows::new()), finished_events: 0 }
    }

    /// Records added so far, duplicates included (`RowBuilder.events`).
    #[getter]
    fn events(&self) -> usize {
        self.rows.as_ref().map_or(self.finished_events, |r| r.events)
    }

    /// Adds `values[start:]` in order up to the first value it cannot prove valid, whose index
    /// it returns (`len(values)`: all added). The GIL is released while decoding.
    fn add_run(&mut self, py: Python<'_>, values: &Bound<'_, PyList>, start: usize) -> PyResult<usize> {
        let SinkRows { schema, rows, .. } = self;
        let schema = schema.get();
        let rows = rows.as_mut().ok_or_else(|| PyRuntimeError::new_err("this batch was already finished"))?;
        let n = values.len();
        let mut i = start;
        while i < n {
            let end = (i + CHUNK).min(n);
            let items: Vec<Bound<'_, PyAny>> = (i..end).map(|k| values.get_item(k)).collect::<PyResult<_>>()?;
            let slices: Vec<Option<&[u8]>> =
                items.iter().map(|o| o.cast::<PyBytes>().ok().map(|b| b.as_bytes())).collect();
            let stop = py.detach(|| slices.iter().position(|v| !schema.take(rows, *v)));
            if let Some(k) = stop {
                return Ok(i + k);
            }
            i = end;
        }
        Ok(n)
    }

    /// Adds the rows the Python path derived for one record (`rows.record_rows`): counted,
    /// deduplicated by `event_id` like the others; `group` is its call event type, if any.
    #[pyo3(signature = (event_id, raw, group=None, fixed=None, facts=None, agent=None))]
    fn add_rows(
        &mut self,
        event_id: &str,
        raw: &Bound<'_, PyTuple>,
        group: Option<&str>,
        fixed: Option<&Bound<'_, PyTuple>>,
        facts: Option<&Bound<'_, PyTuple>>,
        agent: Option<&Bound<'_, PyTuple>>,
    ) -> PyResult<()> {
        let rows = self.rows()?;
        let bad = |what: &str| PyValueError::new_err(format!("add_rows: {what} has the wrong width"));
        if raw.len() != rows::EVENTS_RAW.len() {
            return Err(bad("raw"));
        }
        if agent.is_some_and(|a| a.len() != rows::AGENT_STATE_CHANGES.len()) {
            return Err(bad("agent"));
        }
        if let Some(t) = group {
            let names = rows::FACTS.iter().find(|(ft, _)| *ft == t).map(|(_, n)| n.len());
            if names.is_none() || fixed.map(|f| f.len()) != Some(rows::CALL_FIXED.len())
                || facts.map(|f| f.len()) != names
            {
                return Err(bad("call row"));
            }
        }
        if !rows.claim(event_id) {
            return Ok(());
        }
        for (col, v) in rows.raw.iter_mut().zip(cells(Some(raw))) {
            col.push(v);
        }
        if let Some(t) = group {
            let g = rows.group(t).expect("checked above");
            for (col, v) in g.fixed.iter_mut().zip(cells(fixed)) {
                col.push(v);
            }
            for (col, v) in g.facts.iter_mut().zip(cells(facts)) {
                col.push(v);
            }
            g.len += 1;
        }
        if agent.is_some() {
            for (col, v) in rows.agents.iter_mut().zip(cells(agent)) {
                col.push(v);
            }
        }
        Ok(())
    }

    /// `(events, tables)`: the batch's columns (`RowBatch.tables`); ends this builder.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(usize, Bound<'py, PyDict>)> {
        let rows = self.rows.take().ok_or_else(|| PyRuntimeError::new_err("this batch was already finished"))?;
        let events = rows.events;
        self.finished_events = events;
        Ok((events, pyout::tables(py, rows)?))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SinkSchema>()?;
    m.add_class::<SinkRows>()?;
    m.add_function(wrap_pyfunction!(encode::encode_column, m)?)?;
    Ok(())
}
