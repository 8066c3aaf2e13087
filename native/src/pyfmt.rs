//! The few places where the Python reference's exact text comes from Python itself: `repr()` in
//! error details, `"|".join()` of exotic values, and the exception classes the ingest catches.
//! Only error paths and never-sent value types come here.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple};

static REPR_TRUNC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static NORMALIZE_ERROR: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();
static DECODE_JSON_BODY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `"|".join(value)`: raises TypeError for what the Python normalizer cannot join either.
pub fn join(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let sep = PyString::new(py, "|");
    let joined = sep.call_method1("join", (value,))?;
    joined.extract()
}

/// `str(value)`
pub fn str_of(_py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(value.str()?.to_str()?.to_owned())
}

/// `repr(str(value)[:n])`
pub fn repr_str_trunc(py: Python<'_>, value: &Bound<'_, PyAny>, n: usize) -> PyResult<String> {
    let f = REPR_TRUNC.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.eval(c"lambda v, n: repr(str(v)[:n])", None, None)?.unbind())
    })?;
    f.bind(py).call1((value, n))?.extract()
}

/// `repr(s[:n])` of a Rust string.
pub fn repr_trunc(py: Python<'_>, s: &str, n: usize) -> PyResult<String> {
    repr_str_trunc(py, PyString::new(py, s).as_any(), n)
}

/// `repr(s)` of an optional string (`None` when absent).
pub fn repr_opt(py: Python<'_>, s: Option<&str>) -> PyResult<String> {
    match s {
        None => Ok("None".to_owned()),
        Some(s) => Ok(PyString::new(py, s).repr()?.to_str()?.to_owned()),
    }
}

/// `ccod_fs.ingest.normalize_error.NormalizeError(reason, detail)` as a PyErr.
pub fn normalize_error(py: Python<'_>, reason: &str, detail: &str) -> PyErr {
    let made = NORMALIZE_ERROR
        .import(py, "ccod_fs.ingest.normalize_error", "NormalizeError")
        .and_then(|cls| cls.call1((reason, detail)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// The Python decoder, `ccod_fs.esl.decode.decode_json_body`: raises its `EslDecodeError` (the scanner
/// hands every body it does not accept to it, so errors are the reference's own) or returns the
/// `EslEvent` for the rare bodies with values FreeSWITCH never sends (numbers, objects...).
pub fn decode_json_body<'py>(py: Python<'py>, body: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let f = DECODE_JSON_BODY.import(py, "ccod_fs.esl.decode", "decode_json_body")?;
    let args = PyTuple::new(py, [pyo3::types::PyBytes::new(py, body)])?;
    f.call1(args)
}
