//! `ccod_fs.ingest.pipeline.SequenceWatch` for the frames `feed()` / `normalize_json()` decode
//! natively, plus the newest `Event-Date-Timestamp` (the lag metric).
//!
//! Values are read as `EslEvent.get()` returns them (a string; lists joined with `|`, other JSON
//! types `json.dumps`-ed through Python). `observe` is statement for statement the reference's,
//! with Python's integers: sequences are `i128` while they fit, Python ints beyond. A sequence
//! `str.isdigit()` accepts but `int()` rejects (`"²"`, more than 4300 digits) is ignored: the
//! reference raises ValueError there before changing any state.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;

use crate::headers::{Headers, Value, K};

static EVENT_GET: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static INT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A Python int: native while it fits.
pub enum Num {
    I(i128),
    P(Py<PyAny>),
}

impl Num {
    pub fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Num::I(v) => Ok(v.into_pyobject(py)?.into_any()),
            Num::P(o) => Ok(o.bind(py).clone()),
        }
    }

    fn from_py(v: &Bound<'_, PyAny>) -> Num {
        match v.extract::<i128>() {
            Ok(i) => Num::I(i),
            Err(_) => Num::P(v.clone().unbind()),
        }
    }
}

pub struct Watch {
    pub core_uuid: Option<String>,
    pub last: Num,
    pub skipped: Num,
    /// (kind, Event-Sequence), not yet taken.
    pub anomalies: Vec<(&'static str, String)>,
    /// `Event-Date-Timestamp` of the newest event that had one.
    pub last_ts: Option<String>,
}

impl Default for Watch {
    fn default() -> Self {
        Watch { core_uuid: None, last: Num::I(-1), skipped: Num::I(0), anomalies: Vec::new(), last_ts: None }
    }
}

/// `event.get(key)`: None, the string, or the text `EslEvent.get` renders for any other value.
fn get_text<'h>(h: &'h Headers<'_, '_>, k: K) -> PyResult<Option<Cow<'h, str>>> {
    Ok(match h.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::Str(s)) => Some(Cow::Borrowed(&**s)),
        Some(Value::List(items)) => Some(Cow::Owned(items.join("|"))),
        Some(Value::Py(o)) => {
            let py = h.py;
            let f = EVENT_GET.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
                Ok(py
                    .eval(c"lambda v: __import__('ccod_fs.esl.event', fromlist=['EslEvent']).EslEvent({'k': v}).get('k')", None, None)?
                    .unbind())
            })?;
            let text = f.bind(py).call1((o.bind(py),))?;
            if text.is_none() {
                None
            } else {
                Some(Cow::Owned(text.extract::<String>()?))
            }
        }
    })
}

/// `int(sequence)` when `sequence.isdigit()`; None when observe ignores it.
fn sequence_number(py: Python<'_>, s: &str) -> PyResult<Option<Num>> {
    if s.is_ascii() {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Ok(None);
        }
        let significant = s.trim_start_matches('0');
        if significant.len() <= 38 {
            let mut v: i128 = 0;
            for c in significant.bytes() {
                v = v * 10 + (c - b'0') as i128;
            }
            return Ok(Some(Num::I(v)));
        }
    } else if !PyString::new(py, s).call_method0("isdigit")?.is_truthy()? {
        return Ok(None);
    }
    let int = INT.get_or_try_init(py, || -> PyResult<Py<PyAny>> { Ok(py.eval(c"int", None, None)?.unbind()) })?;
    match int.bind(py).call1((s,)) {
        Ok(v) => Ok(Some(Num::from_py(&v))),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Watch {
    /// What the ingest pipeline observes of one decoded event (errors of exotic values: nothing).
    pub fn see(&mut self, h: &Headers<'_, '_>) {
        let py = h.py;
        if let (Ok(Some(core)), Ok(Some(seq))) = (get_text(h, K::CoreUuid), get_text(h, K::EventSequence)) {
            let _ = self.observe(py, &core, &seq);
        }
        if let Ok(Some(ts)) = get_text(h, K::EventDateTimestamp) {
            match &mut self.last_ts {
                Some(last) => {
                    last.clear();
                    last.push_str(&ts);
                }
                None => self.last_ts = Some(ts.into_owned()),
            }
        }
    }

    /// `SequenceWatch.observe(core_uuid, sequence)`; an anomaly is queued as (kind, sequence).
    fn observe(&mut self, py: Python<'_>, core: &str, sequence: &str) -> PyResult<()> {
        let Some(seq) = sequence_number(py, sequence)? else { return Ok(()) };
        let mut kind = None;
        if self.core_uuid.as_deref() != Some(core) {
            if self.core_uuid.is_some() {
                kind = Some("core-change");
            }
            self.core_uuid = Some(core.to_owned());
        } else {
            match (&seq, &self.last, &self.skipped) {
                // |seq|, |last| < 10^38: no overflow but in `skipped`
                (Num::I(s), Num::I(l), Num::I(k)) => {
                    if s <= l {
                        kind = Some("regression");
                    } else if *s > l + 1 {
                        let gap = s - l - 1;
                        self.skipped = match k.checked_add(gap) {
                            Some(v) => Num::I(v),
                            None => Num::from_py(&k.into_pyobject(py)?.into_any().add(gap)?),
                        };
                    }
                }
                _ => {
                    let (s, l) = (seq.to_py(py)?, self.last.to_py(py)?);
                    if s.le(&l)? {
                        kind = Some("regression");
                    } else if s.gt(l.add(1)?)? {
                        let gap = s.sub(&l)?.sub(1)?;
                        self.skipped = Num::from_py(&self.skipped.to_py(py)?.add(gap)?);
                    }
                }
            }
        }
        self.last = seq;
        if let Some(kind) = kind {
            self.anomalies.push((kind, sequence.to_owned()));
        }
        Ok(())
    }
}
