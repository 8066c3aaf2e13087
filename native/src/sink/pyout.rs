//! Rows -> Python: `{table: {column: list}}` in `rows.TABLES` order, the `RowBatch.tables` shape.
//! Texts of low-cardinality columns are created once per distinct value and shared.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::fxhash::FxHashMap;
use super::rows::{Cell, Rows, AGENT_STATE_CHANGES, CALL_FACTS, CALL_FIXED, EVENTS_RAW};

const SHARED_MAX: usize = 4096;

struct Column<'py, 't> {
    py: Python<'py>,
    text: &'t str,
    items: Vec<Bound<'py, PyAny>>,
    shared: Option<FxHashMap<&'t str, Bound<'py, PyString>>>,
}

impl<'py, 't> Column<'py, 't> {
    fn new(py: Python<'py>, text: &'t str, name: &str, capacity: usize) -> Self {
        let unique = matches!(name, "event_id" | "call_id" | "payload");
        Column {
            py,
            text,
            items: Vec::with_capacity(capacity),
            shared: if unique { None } else { Some(FxHashMap::default()) },
        }
    }

    fn push(&mut self, c: Cell) -> PyResult<()> {
        let py = self.py;
        let obj = match c {
            Cell::Null => py.None().into_bound(py),
            Cell::Int(i) => i.into_pyobject(py)?.into_any(),
            Cell::UInt(i) => i.into_pyobject(py)?.into_any(),
            Cell::Obj(o) => o.into_bound(py),
            Cell::Str(start, len) => {
                let s = &self.text[start..start + len];
                match &mut self.shared {
                    Some(map) => match map.get(s) {
                        Some(v) => v.clone().into_any(),
                        None => {
                            let v = PyString::new(py, s);
                            if map.len() < SHARED_MAX {
                                map.insert(s, v.clone());
                            }
                            v.into_any()
                        }
                    },
                    None => PyString::new(py, s).into_any(),
                }
            }
        };
        self.items.push(obj);
        Ok(())
    }

    fn extend(&mut self, cells: Vec<Cell>) -> PyResult<()> {
        for c in cells {
            self.push(c)?;
        }
        Ok(())
    }

    fn nulls(&mut self, n: usize) {
        let none = self.py.None().into_bound(self.py);
        self.items.extend(std::iter::repeat_n(none, n));
    }

    fn into_list(self) -> PyResult<Bound<'py, PyList>> {
        PyList::new(self.py, self.items)
    }
}

fn table<'py>(py: Python<'py>, text: &str, names: &[&str], cols: Vec<Vec<Cell>>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, cells) in names.iter().zip(cols) {
        let mut col = Column::new(py, text, name, cells.len());
        col.extend(cells)?;
        d.set_item(*name, col.into_list()?)?;
    }
    Ok(d)
}

pub fn tables<'py>(py: Python<'py>, rows: Rows) -> PyResult<Bound<'py, PyDict>> {
    let text = rows.text.as_str();
    let out = PyDict::new(py);
    out.set_item("events_raw", table(py, text, &EVENTS_RAW, rows.raw)?)?;
    let total: usize = rows.groups.iter().map(|g| g.len).sum();
    let mut fixed: Vec<Column<'py, '_>> = CALL_FIXED.iter().map(|n| Column::new(py, text, n, total)).collect();
    let mut facts: Vec<Column<'py, '_>> = CALL_FACTS.iter().map(|n| Column::new(py, text, n, total)).collect();
    for g in rows.groups {
        for (col, cells) in fixed.iter_mut().zip(g.fixed) {
            col.extend(cells)?;
        }
        let mut own: Vec<Option<Vec<Cell>>> = g.facts.into_iter().map(Some).collect();
        for (name, col) in CALL_FACTS.iter().zip(facts.iter_mut()) {
            match g.names.iter().position(|n| n == name) {
                Some(j) => col.extend(own[j].take().unwrap_or_default())?,
                None => col.nulls(g.len),
            }
        }
    }
    let calls = PyDict::new(py);
    for (name, col) in CALL_FIXED.iter().zip(fixed) {
        calls.set_item(*name, col.into_list()?)?;
    }
    for (name, col) in CALL_FACTS.iter().zip(facts) {
        calls.set_item(*name, col.into_list()?)?;
    }
    out.set_item("calls_partial", calls)?;
    out.set_item("agent_state_changes", table(py, text, &AGENT_STATE_CHANGES, rows.agents)?)?;
    Ok(out)
}
