//! ESL framing (`ccod_fs.esl.frames.FrameParser`) for the hot path: event frames whose two outer
//! headers are exactly `Content-Length: N\nContent-Type: text/event-json|text/event-plain\n\n`
//! (one regex step in Python) are cut here; anything else (command replies, stray blank lines,
//! odd headers, garbage and its resynchronisation) is handed to a Python `FrameParser`, which
//! keeps it until it holds no state the native path cannot take over. Frames and errors are
//! therefore the reference's own, byte for byte.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

const EVENT_JSON: &str = "text/event-json";
const EVENT_PLAIN: &str = "text/event-plain";

static FRAME: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();
static FRAME_PARSER: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();
static FRAME_ERROR: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();

/// What an event frame head at the start of some bytes is.
enum Head {
    /// (Content-Length digits, content type, head length)
    Match(usize, usize, &'static str, usize),
    /// The bytes end inside what could still become an event head.
    Prefix,
    No,
}

fn head(s: &[u8]) -> Head {
    const CL: &[u8] = b"Content-Length: ";
    const CT: &[u8] = b"\nContent-Type: text/event-";
    if s.len() < CL.len() {
        return if CL.starts_with(s) { Head::Prefix } else { Head::No };
    }
    if !s.starts_with(CL) {
        return Head::No;
    }
    let mut i = CL.len();
    let digits_start = i;
    while i < s.len() && s[i].is_ascii_digit() && i - digits_start < 8 {
        i += 1;
    }
    let n_digits = i - digits_start;
    if i == s.len() {
        return if n_digits <= 7 { Head::Prefix } else { Head::No };
    }
    if n_digits == 0 || n_digits > 7 {
        return Head::No;
    }
    let rest = &s[i..];
    for (tail, ctype) in [(&b"json\n\n"[..], EVENT_JSON), (&b"plain\n\n"[..], EVENT_PLAIN)] {
        let full_len = CT.len() + tail.len();
        if rest.len() >= full_len {
            if rest.starts_with(CT) && &rest[CT.len()..full_len] == tail {
                let mut length = 0usize;
                for &c in &s[digits_start..i] {
                    length = length * 10 + (c - b'0') as usize;
                }
                return Head::Match(n_digits, length, ctype, i + full_len);
            }
        } else {
            let mut want = CT.to_vec();
            want.extend_from_slice(tail);
            if want.starts_with(rest) {
                return Head::Prefix;
            }
        }
    }
    Head::No
}

enum PendingHeaders {
    /// A fast-path event frame: its Content-Length digits and content type.
    Event(String, &'static str),
    /// Headers a Python parser had read.
    Dict(Py<PyDict>),
}

/// The outer headers of a frame the native path completed.
pub enum Head2<'a> {
    /// A fast-path event frame: its Content-Length digits and content type.
    Event(&'a str, &'static str),
    /// Headers a Python parser had read before handing the frame's body over.
    Dict(&'a Py<PyDict>),
}

/// One item of a read, in stream order.
pub enum Out {
    /// A frame the native path completed, already turned into its item by `on_event`.
    Item(Py<PyAny>),
    /// A `Frame` made by the Python parser.
    Frame(Py<PyAny>),
    /// A `FrameError`.
    Error(Py<PyAny>),
}

#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
    pending: Option<(PendingHeaders, usize)>,
    python: Option<Py<PyAny>>,
}

/// `Frame(headers, body)`
pub fn make_frame<'py>(py: Python<'py>, headers: &Bound<'py, PyDict>, body: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let cls = FRAME.import(py, "ccod_fs.esl.frames", "Frame")?;
    cls.call1((headers, PyBytes::new(py, body)))
}

pub fn event_headers<'py>(py: Python<'py>, digits: &str, ctype: &str) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("Content-Length", digits)?;
    d.set_item("Content-Type", ctype)?;
    Ok(d)
}

impl Framer {
    /// `on_event(headers, body)` turns a frame the native path completed into its item, in order.
    pub fn feed(
        &mut self,
        py: Python<'_>,
        data: &[u8],
        out: &mut Vec<Out>,
        on_event: &mut dyn FnMut(Head2<'_>, &[u8]) -> PyResult<Py<PyAny>>,
    ) -> PyResult<()> {
        if self.python.is_some() {
            return self.feed_python(py, data, out);
        }
        let mut pos = 0;
        let joined: Vec<u8>;
        let mut data = data;
        if let Some((headers, need)) = self.pending.take() {
            let missing = need - self.buf.len();
            if data.len() < missing {
                self.buf.extend_from_slice(data);
                self.pending = Some((headers, need));
                return Ok(());
            }
            let mut body = std::mem::take(&mut self.buf);
            body.extend_from_slice(&data[..missing]);
            // Turned into its item now: events are normalized in stream order.
            out.push(Out::Item(match &headers {
                PendingHeaders::Event(digits, ctype) => on_event(Head2::Event(digits, ctype), &body)?,
                PendingHeaders::Dict(d) => on_event(Head2::Dict(d), &body)?,
            }));
            pos = missing;
        } else if !self.buf.is_empty() {
            self.buf.extend_from_slice(data);
            joined = std::mem::take(&mut self.buf);
            data = &joined;
        }
        let size = data.len();
        while pos < size {
            match head(&data[pos..]) {
                Head::Match(n_digits, length, ctype, head_len) => {
                    let digits_at = pos + 16;
                    // SAFETY: ASCII digits.
                    let digits = unsafe { std::str::from_utf8_unchecked(&data[digits_at..digits_at + n_digits]) };
                    let end = pos + head_len;
                    if end + length > size {
                        self.pending = Some((PendingHeaders::Event(digits.to_owned(), ctype), length));
                        pos = end;
                        break;
                    }
                    out.push(Out::Item(on_event(Head2::Event(digits, ctype), &data[end..end + length])?));
                    pos = end + length;
                }
                Head::Prefix => break,
                Head::No => {
                    let parser = FRAME_PARSER.import(py, "ccod_fs.esl.frames", "FrameParser")?.call0()?;
                    self.python = Some(parser.unbind());
                    return self.feed_python(py, &data[pos..], out);
                }
            }
        }
        if pos < size {
            self.buf.extend_from_slice(&data[pos..]);
        }
        Ok(())
    }

    fn feed_python(&mut self, py: Python<'_>, data: &[u8], out: &mut Vec<Out>) -> PyResult<()> {
        let parser = self.python.as_ref().expect("python parser").bind(py).clone();
        let frames = parser.call_method1("feed", (PyBytes::new(py, data),))?;
        for frame in frames.cast::<PyList>()?.iter() {
            out.push(Out::Frame(frame.unbind()));
        }
        for error in parser.call_method0("take_errors")?.cast::<PyList>()?.iter() {
            out.push(Out::Error(error.unbind()));
        }
        // Take the state over when the Python parser is not skipping garbage: its buffer then holds
        // either an unparsed header block (re-parsed from its start on the next read, as here) or
        // the first bytes of a pending body.
        if !parser.getattr("_resyncing")?.is_truthy()? {
            let pending = parser.getattr("_pending")?;
            let buf: Vec<u8> = parser.getattr("_buf")?.extract()?;
            if pending.is_none() {
                self.pending = None;
            } else {
                let need: usize = parser.getattr("_need")?.extract()?;
                self.pending = Some((PendingHeaders::Dict(pending.cast_into::<PyDict>()?.unbind()), need));
            }
            self.buf = buf;
            self.python = None;
        }
        Ok(())
    }

    /// `FrameParser.finish()`: the stream ended; a frame left half-read is a `truncated-frame` error.
    pub fn finish(&mut self, py: Python<'_>, out: &mut Vec<Out>) -> PyResult<()> {
        if let Some(parser) = self.python.take() {
            let parser = parser.bind(py);
            parser.call_method0("finish")?;
            for error in parser.call_method0("take_errors")?.cast::<PyList>()?.iter() {
                out.push(Out::Error(error.unbind()));
            }
        } else {
            let trimmed = {
                let b = &self.buf;
                let start = b.iter().position(|&c| c != b'\n');
                start.is_some()
            };
            if self.pending.is_some() || trimmed {
                let missing = match &self.pending {
                    Some((_, need)) => *need as i64 - self.buf.len() as i64,
                    None => 0,
                };
                let raw = &self.buf[..self.buf.len().min(65536)];
                let cls = FRAME_ERROR.import(py, "ccod_fs.esl.errors", "FrameError")?;
                let detail = format!("stream ended mid-frame ({missing} body bytes missing)");
                let err = cls.call1((PyString::new(py, "truncated-frame"), detail, PyBytes::new(py, raw)))?;
                out.push(Out::Error(err.unbind()));
            }
        }
        self.buf.clear();
        self.pending = None;
        Ok(())
    }
}
