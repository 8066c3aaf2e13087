//! `ccod_fs_native`: a byte-exact native twin of `ccod_fs.ingest.normalize.Normalizer` for
//! `text/event-json` bodies (decode + normalize + serialize in one call). The Python normalizer is
//! the reference; snapshots are interchangeable both ways.

mod agent_book;
mod call_legs;
mod cc_actions;
mod envelope;
mod frames;
mod headers;
mod json;
mod node_events;
mod normalize;
mod ordmap;
mod pyfmt;
mod seqwatch;
mod sink;
mod values;

use std::collections::{HashMap, VecDeque};

use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use agent_book::AgentBook;
use call_legs::{Call, CallBook, Leg};
use headers::Fail;
use normalize::Core;
use ordmap::OrdMap;

#[pyclass(module = "ccod_fs_native")]
struct Normalizer {
    core: Core,
    framer: frames::Framer,
    /// `SequenceWatch` + the newest `Event-Date-Timestamp` of every decoded event-json body.
    watch: seqwatch::Watch,
}

fn tenant_map(py: Python<'_>, what: Option<&Bound<'_, PyDict>>) -> PyResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    if let Some(d) = what {
        for (k, v) in d.iter() {
            let tenant: String = v.extract()?;
            if !values::is_tenant_id(&tenant) {
                return Err(PyValueError::new_err(format!(
                    "configured tenant {} is not a valid tenant id",
                    pyfmt::repr_opt(py, Some(&tenant))?
                )));
            }
            out.insert(k.extract::<String>()?, tenant);
        }
    }
    Ok(out)
}

fn opt<'py, T: IntoPyObject<'py>>(py: Python<'py>, v: Option<T>) -> PyResult<Bound<'py, PyAny>> {
    match v {
        Some(v) => Ok(pyo3::BoundObject::into_bound(pyo3::BoundObject::into_any(v.into_pyobject(py).map_err(Into::into)?))),
        None => Ok(py.None().into_bound(py)),
    }
}

fn ordmap_dict<'py>(py: Python<'py>, m: &OrdMap<String>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in m.ordered() {
        d.set_item(k, v)?;
    }
    Ok(d)
}

fn dict_ordmap(d: Option<Bound<'_, PyAny>>) -> PyResult<OrdMap<String>> {
    let mut m = OrdMap::default();
    if let Some(d) = d {
        let d = d.cast::<PyDict>()?;
        for (k, v) in d.iter() {
            m.insert(&k.extract::<String>()?, v.extract::<String>()?);
        }
    }
    Ok(m)
}

/// `data.get(key)` of a mapping (None when absent).
fn get_opt<'py>(data: &Bound<'py, PyAny>, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    let v = data.call_method1("get", (key,))?;
    Ok(if v.is_none() { None } else { Some(v) })
}

fn row_item<'py, T: FromPyObjectOwned<'py>>(row: &[Bound<'py, PyAny>], i: usize, default: T) -> PyResult<T> {
    match row.get(i) {
        Some(v) => v.extract::<T>().map_err(Into::into),
        None => Ok(default),
    }
}

#[pymethods]
impl Normalizer {
    #[new]
    #[pyo3(signature = (node=None, system_tenant="system", agent_tenants=None, domain_tenants=None,
                        domain_is_tenant=false, ended_leg_retention=20000))]
    fn new(
        py: Python<'_>,
        node: Option<String>,
        system_tenant: &str,
        agent_tenants: Option<&Bound<'_, PyDict>>,
        domain_tenants: Option<&Bound<'_, PyDict>>,
        domain_is_tenant: bool,
        ended_leg_retention: usize,
    ) -> PyResult<Self> {
        if !values::is_tenant_id(system_tenant) {
            return Err(PyValueError::new_err(format!(
                "system_tenant {} is not a valid tenant id",
                pyfmt::repr_opt(py, Some(system_tenant))?
            )));
        }
        let agents = AgentBook {
            agent_tenants: tenant_map(py, agent_tenants)?,
            domain_tenants: tenant_map(py, domain_tenants)?,
            domain_is_tenant,
            ..AgentBook::default()
        };
        Ok(Normalizer {
            core: Core {
                node,
                system_tenant: system_tenant.to_owned(),
                book: CallBook::new(ended_leg_retention),
                agents,
                last_seen: None,
            },
            framer: frames::Framer::default(),
            watch: seqwatch::Watch::default(),
        })
    }

    /// The canonical events of one `text/event-json` body: [(tenant_id, serialized event)].
    fn normalize_json<'py>(&mut self, py: Python<'py>, body: &[u8]) -> PyResult<Bound<'py, PyList>> {
        self.normalize_body(py, body)
    }

    /// `FrameParser.feed` + `normalize_json` for each `text/event-json` frame, in stream order:
    /// a list per normalized event frame, `(Frame, exception)` for one that raised, every other
    /// `Frame` as is, then the `FrameError`s of this read.
    fn feed<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyList>> {
        let mut outs = Vec::new();
        let Normalizer { core, framer, watch } = self;
        framer.feed(py, data, &mut outs, &mut |head, body| {
            let headers = match head {
                frames::Head2::Event(digits, ctype) => {
                    let headers = || frames::event_headers(py, digits, ctype);
                    return Ok(if ctype == "text/event-json" {
                        event_item(core, watch, py, body, || frames::make_frame(py, &headers()?, body))?
                    } else {
                        frames::make_frame(py, &headers()?, body)?
                    }
                    .unbind());
                }
                frames::Head2::Dict(d) => d.bind(py).clone(),
            };
            let is_json = match headers.get_item("Content-Type")? {
                Some(v) => v.eq("text/event-json")?,
                None => false,
            };
            if is_json {
                Ok(event_item(core, watch, py, body, || frames::make_frame(py, &headers, body))?.unbind())
            } else {
                Ok(frames::make_frame(py, &headers, body)?.unbind())
            }
        })?;
        self.items(py, outs)
    }

    /// `FrameParser.finish()`: the stream ended; returns the `FrameError` of a half-read frame, if any.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut outs = Vec::new();
        self.framer.finish(py, &mut outs)?;
        self.items(py, outs)
    }

    /// The sequence anomalies seen since the last call, in order: [(kind, Event-Sequence)], kind
    /// "core-change" or "regression" (`SequenceWatch.observe`).
    fn take_sequence_anomalies<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for (kind, seq) in self.watch.anomalies.drain(..) {
            list.append(PyTuple::new(py, [PyString::new(py, kind), PyString::new(py, &seq)])?)?;
        }
        Ok(list)
    }

    /// `SequenceWatch.core_uuid`
    #[getter]
    fn sequence_core_uuid(&self) -> Option<&str> {
        self.watch.core_uuid.as_deref()
    }

    /// `SequenceWatch.last` (-1 before the first observed sequence)
    #[getter]
    fn sequence_last<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.watch.last.to_py(py)
    }

    /// `SequenceWatch.skipped`
    #[getter]
    fn sequence_skipped<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.watch.skipped.to_py(py)
    }

    /// The `Event-Date-Timestamp` text of the newest decoded event-json body that had one.
    #[getter]
    fn last_event_timestamp(&self) -> Option<&str> {
        self.watch.last_ts.as_deref()
    }

    /// (node, Core-UUID, Event-Date-Timestamp µs) of the last mapped event.
    #[getter]
    fn last_seen<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.core.last_seen {
            None => Ok(py.None().into_bound(py)),
            Some((node, core, ts)) => {
                Ok(PyTuple::new(py, [opt(py, node.as_deref())?, core.into_pyobject(py)?.into_any(), ts.into_pyobject(py)?.into_any()])?
                    .into_any())
            }
        }
    }

    /// The Python `Normalizer.state_snapshot()` format.
    fn state_snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let book = &self.core.book;
        let legs = PyList::empty(py);
        for (_, g) in book.legs.ordered() {
            let row = PyList::new(
                py,
                [
                    g.uuid.as_str().into_pyobject(py)?.into_any(),
                    g.call_id.as_str().into_pyobject(py)?.into_any(),
                    g.role.as_str().into_pyobject(py)?.into_any(),
                    g.direction.as_str().into_pyobject(py)?.into_any(),
                    opt(py, g.tenant.as_deref())?,
                    pyo3::types::PyBool::new(py, g.offered).to_owned().into_any(),
                    opt(py, g.agent.as_deref())?,
                    opt(py, g.created_us)?,
                    pyo3::types::PyBool::new(py, g.ended).to_owned().into_any(),
                ],
            )?;
            legs.append(row)?;
        }
        let calls = PyList::empty(py);
        for (_, c) in book.calls.ordered() {
            let row = PyList::new(
                py,
                [
                    c.call_id.as_str().into_pyobject(py)?.into_any(),
                    c.tenant.as_str().into_pyobject(py)?.into_any(),
                    opt(py, c.joined_us)?,
                    opt(py, c.answered_us)?,
                    opt(py, c.hangup_by.as_deref())?,
                    opt(py, c.agent.as_deref())?,
                ],
            )?;
            calls.append(row)?;
        }
        let ended = PyList::new(py, book.ended.iter().map(String::as_str))?;
        let calls_d = PyDict::new(py);
        calls_d.set_item("legs", legs)?;
        calls_d.set_item("calls", calls)?;
        calls_d.set_item("ended", ended)?;
        let agents = &self.core.agents;
        let agents_d = PyDict::new(py);
        agents_d.set_item("contact_tenants", ordmap_dict(py, &agents.contact_tenants)?)?;
        agents_d.set_item("leg_tenants", ordmap_dict(py, &agents.leg_tenants)?)?;
        agents_d.set_item("status", ordmap_dict(py, &agents.status)?)?;
        agents_d.set_item("state", ordmap_dict(py, &agents.state)?)?;
        let out = PyDict::new(py);
        out.set_item("version", 1)?;
        out.set_item("calls", calls_d)?;
        out.set_item("agents", agents_d)?;
        match &self.core.last_seen {
            None => out.set_item("last_seen", py.None())?,
            Some((node, core, ts)) => {
                let l = PyList::new(py, [opt(py, node.as_deref())?, core.into_pyobject(py)?.into_any(), ts.into_pyobject(py)?.into_any()])?;
                out.set_item("last_seen", l)?
            }
        }
        Ok(out)
    }

    /// Restores a snapshot of either normalizer (Python or native).
    fn restore(&mut self, snapshot: &Bound<'_, PyAny>) -> PyResult<()> {
        let version = get_opt(snapshot, "version")?;
        if !version.is_some_and(|v| v.eq(1).unwrap_or(false)) {
            return Err(PyValueError::new_err("unknown normalizer snapshot version"));
        }
        let calls = snapshot.get_item("calls").map_err(|_| PyKeyError::new_err("calls"))?;
        let agents = snapshot.get_item("agents").map_err(|_| PyKeyError::new_err("agents"))?;
        let mut legs = OrdMap::default();
        if let Some(rows) = get_opt(&calls, "legs")? {
            for row in rows.try_iter()? {
                let row: Vec<Bound<'_, PyAny>> = row?.try_iter()?.collect::<PyResult<_>>()?;
                let leg = Leg {
                    uuid: row_item(&row, 0, String::new())?,
                    call_id: row_item(&row, 1, String::new())?,
                    role: row_item(&row, 2, String::new())?,
                    direction: row_item(&row, 3, String::new())?,
                    tenant: row_item(&row, 4, None)?,
                    offered: row_item(&row, 5, false)?,
                    agent: row_item(&row, 6, None)?,
                    created_us: row_item(&row, 7, None)?,
                    ended: row_item(&row, 8, false)?,
                };
                legs.insert(&leg.uuid.clone(), leg);
            }
        }
        let mut calls_m = OrdMap::default();
        if let Some(rows) = get_opt(&calls, "calls")? {
            for row in rows.try_iter()? {
                let row: Vec<Bound<'_, PyAny>> = row?.try_iter()?.collect::<PyResult<_>>()?;
                let call = Call {
                    call_id: row_item(&row, 0, String::new())?,
                    tenant: row_item(&row, 1, String::new())?,
                    joined_us: row_item(&row, 2, None)?,
                    answered_us: row_item(&row, 3, None)?,
                    hangup_by: row_item(&row, 4, None)?,
                    agent: row_item(&row, 5, None)?,
                };
                calls_m.insert(&call.call_id.clone(), call);
            }
        }
        let mut ended = VecDeque::new();
        if let Some(items) = get_opt(&calls, "ended")? {
            for item in items.try_iter()? {
                ended.push_back(item?.extract::<String>()?);
            }
        }
        let contact = dict_ordmap(get_opt(&agents, "contact_tenants")?)?;
        let leg_t = dict_ordmap(get_opt(&agents, "leg_tenants")?)?;
        let status = dict_ordmap(get_opt(&agents, "status")?)?;
        let state = dict_ordmap(get_opt(&agents, "state")?)?;
        let last_seen = match get_opt(snapshot, "last_seen")? {
            Some(last) if last.is_truthy()? => {
                Some((last.get_item(0)?.extract()?, last.get_item(1)?.extract()?, last.get_item(2)?.extract()?))
            }
            _ => None,
        };
        let book = &mut self.core.book;
        book.legs = legs;
        book.calls = calls_m;
        book.ended = ended;
        let a = &mut self.core.agents;
        a.contact_tenants = contact;
        a.leg_tenants = leg_t;
        a.status = status;
        a.state = state;
        self.core.last_seen = last_seen;
        Ok(())
    }
}

fn normalize_body<'py>(
    core: &mut Core,
    watch: &mut seqwatch::Watch,
    py: Python<'py>,
    body: &[u8],
) -> PyResult<Bound<'py, PyList>> {
    let h = json::decode(py, body)?;
    // What the ingest pipeline observes of every decoded event, before it is normalized.
    watch.see(&h);
    match core.normalize(&h) {
        Ok(out) => {
            let list = PyList::empty(py);
            for (tenant, bytes) in out {
                list.append(PyTuple::new(
                    py,
                    [PyString::new(py, &tenant).into_any(), PyBytes::new(py, &bytes).into_any()],
                )?)?;
            }
            Ok(list)
        }
        Err(Fail::Nz(reason, detail)) => Err(pyfmt::normalize_error(py, reason, &detail)),
        Err(Fail::Py(e)) => Err(e),
    }
}

/// The normalized list, or `(frame, exception)` when it raised.
fn event_item<'py>(
    core: &mut Core,
    watch: &mut seqwatch::Watch,
    py: Python<'py>,
    body: &[u8],
    frame: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    match normalize_body(core, watch, py, body) {
        Ok(list) => Ok(list.into_any()),
        Err(e) => Ok(PyTuple::new(py, [frame()?, e.into_value(py).into_bound(py).into_any()])?.into_any()),
    }
}

impl Normalizer {
    fn normalize_body<'py>(&mut self, py: Python<'py>, body: &[u8]) -> PyResult<Bound<'py, PyList>> {
        normalize_body(&mut self.core, &mut self.watch, py, body)
    }

    fn event_item<'py>(
        &mut self,
        py: Python<'py>,
        body: &[u8],
        frame: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        event_item(&mut self.core, &mut self.watch, py, body, frame)
    }

    fn items<'py>(&mut self, py: Python<'py>, outs: Vec<frames::Out>) -> PyResult<Bound<'py, PyList>> {
        let items = PyList::empty(py);
        for o in outs {
            let item = match o {
                frames::Out::Frame(frame) => {
                    let frame = frame.bind(py).clone();
                    if frame.getattr("content_type")?.eq("text/event-json")? {
                        let body: Vec<u8> = frame.getattr("body")?.extract()?;
                        let f2 = frame.clone();
                        self.event_item(py, &body, move || Ok(f2))?
                    } else {
                        frame
                    }
                }
                frames::Out::Error(e) => e.into_bound(py),
                frames::Out::Item(item) => item.into_bound(py),
            };
            items.append(item)?;
        }
        Ok(items)
    }
}

#[pymodule]
fn ccod_fs_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Normalizer>()?;
    sink::register(m)?;
    Ok(())
}
