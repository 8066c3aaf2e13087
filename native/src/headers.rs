//! The headers the normalizer reads, out of one decoded event (`EslEvent.headers`), and the Python
//! semantics of reading them: `h.get(k)`, truthiness, `text()` / `nonempty()` (lists joined with `|`).
//!
//! Only the ~90 keys the normalizer ever reads are kept (by id); every other header is validated by
//! the JSON scanner and dropped. Values other than strings and lists of strings (numbers, objects...:
//! never sent by FreeSWITCH) are kept as the Python objects orjson built, and read through Python.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::pyfmt;

macro_rules! keys {
    ($($id:ident = $name:literal),* $(,)?) => {
        /// Header ids: the keys the normalizer reads.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        #[repr(u8)]
        pub enum K { $($id),* }
        pub const NAMES: &[&str] = &[$($name),*];
    };
}

keys! {
    EventName = "Event-Name", EventSubclass = "Event-Subclass", CcAction = "CC-Action",
    CcodSubclass = "ccod_subclass", CoreUuid = "Core-UUID", EventSequence = "Event-Sequence",
    EventDateTimestamp = "Event-Date-Timestamp", Switchname = "FreeSWITCH-Switchname",
    Hostname = "FreeSWITCH-Hostname", UniqueId = "Unique-ID", VarCcodTenant = "variable_ccod_tenant",
    CreatedTime = "Caller-Channel-Created-Time", VarCcAgent = "variable_cc_agent",
    VarCcodAgent = "variable_ccod_agent", CallDirection = "Call-Direction",
    VarMemberSession = "variable_cc_member_session_uuid", VarCcodCallId = "variable_ccod_call_id",
    VarOriginatingLeg = "variable_originating_leg_uuid", OtherLegUniqueId = "Other-Leg-Unique-ID",
    OtherType = "Other-Type", CcMemberSession = "CC-Member-Session-UUID",
    CallerNumber = "Caller-Caller-ID-Number", CallerName = "Caller-Caller-ID-Name",
    DestinationNumber = "Caller-Destination-Number", VarEntryPoint = "variable_ccod_entry_point",
    ChannelName = "Channel-Name", CcodAction = "ccod_action", TransferTarget = "ccod_transfer_target",
    TransferKind = "ccod_transfer_kind", VarCcQueue = "variable_cc_queue", BridgeA = "Bridge-A-Unique-ID",
    BridgeB = "Bridge-B-Unique-ID", DtmfDigit = "DTMF-Digit", DtmfDuration = "DTMF-Duration",
    DtmfSource = "DTMF-Source", RecordFilePath = "Record-File-Path", VarStartUepoch = "variable_start_uepoch",
    AnsweredTime = "Caller-Channel-Answered-Time", HangupTime = "Caller-Channel-Hangup-Time",
    HangupCause = "Hangup-Cause", VarHangupCause = "variable_hangup_cause",
    ReadCodecName = "Channel-Read-Codec-Name", VarReadCodec = "variable_read_codec",
    WriteCodecName = "Channel-Write-Codec-Name", VarWriteCodec = "variable_write_codec",
    ReadCodecRate = "Channel-Read-Codec-Rate", VarReadRate = "variable_read_rate",
    VarHangupDisposition = "variable_sip_hangup_disposition",
    CcQueue = "CC-Queue", CcMemberUuid = "CC-Member-UUID", CcMemberCidNumber = "CC-Member-CID-Number",
    CcMemberCidName = "CC-Member-CID-Name", CcAgent = "CC-Agent", CcAgentCalledTime = "CC-Agent-Called-Time",
    CcAgentAbortedTime = "CC-Agent-Aborted-Time", CcHangupCause = "CC-Hangup-Cause",
    CcAgentAnsweredTime = "CC-Agent-Answered-Time", CcMemberJoinedTime = "CC-Member-Joined-Time",
    CcAgentUuid = "CC-Agent-UUID", CcCause = "CC-Cause", CcCancelReason = "CC-Cancel-Reason",
    AnswerState = "Answer-State", CcAgentStatus = "CC-Agent-Status", CcAgentState = "CC-Agent-State",
    CcAgentContact = "CC-Agent-Contact",
    Username = "username", FromUser = "from-user", User = "user", Realm = "realm", FromHost = "from-host",
    Host = "host", DomainName = "domain_name", CcodTenant = "ccod_tenant", Contact = "contact",
    Expires = "expires", NetworkIp = "network-ip", UserAgent = "user-agent",
    JobUuid = "Job-UUID", JobCommandArg = "Job-Command-Arg", JobCommand = "Job-Command",
    UptimeMsec = "Uptime-msec", SessionCount = "Session-Count", Version = "FreeSWITCH-Version",
}

const NKEYS: usize = NAMES.len();
const ABSENT: u8 = u8::MAX;
const MAX_KEY_LEN: usize = 40;

const TABLE_BITS: u32 = 11;
const TABLE_SIZE: usize = 1 << TABLE_BITS;

/// Little-endian u64 of up to 8 bytes of `b` from `at` (zero-padded).
const fn load_u64(b: &[u8], at: usize) -> u64 {
    let mut v = 0u64;
    let mut i = 0;
    while i < 8 && at + i < b.len() {
        v |= (b[at + i] as u64) << (8 * i);
        i += 1;
    }
    v
}

const fn mix(n: usize, a: u64, b: u64) -> usize {
    let x = (a ^ b.rotate_left(29) ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> (64 - TABLE_BITS)) as usize
}

/// Hash of a key from its length and its first and last 8 bytes (the same as [`mix`] of [`load_u64`]s).
#[inline]
fn key_hash(key: &[u8]) -> usize {
    let n = key.len();
    if n >= 8 {
        let a = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
        let b = u64::from_le_bytes(key[n - 8..].try_into().expect("8 bytes"));
        mix(n, a, b)
    } else {
        mix(n, load_u64(key, 0), 0)
    }
}

const fn const_hash(key: &[u8]) -> usize {
    let n = key.len();
    if n >= 8 {
        mix(n, load_u64(key, 0), load_u64(key, n - 8))
    } else {
        mix(n, load_u64(key, 0), 0)
    }
}

/// Open-addressing table of the key ids (linear probing), built at compile time.
static TABLE: [u8; TABLE_SIZE] = {
    let mut t = [ABSENT; TABLE_SIZE];
    let mut i = 0;
    while i < NAMES.len() {
        let name = NAMES[i].as_bytes();
        assert!(name.len() <= MAX_KEY_LEN);
        let mut slot = const_hash(name);
        while t[slot] != ABSENT {
            slot = (slot + 1) & (TABLE_SIZE - 1);
        }
        t[slot] = i as u8;
        i += 1;
    }
    t
};

/// The id of a header the normalizer reads, or None.
#[inline]
pub fn key_id(key: &[u8]) -> Option<u8> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return None;
    }
    let mut slot = key_hash(key);
    loop {
        let id = TABLE[slot];
        if id == ABSENT {
            return None;
        }
        if NAMES[id as usize].as_bytes() == key {
            return Some(id);
        }
        slot = (slot + 1) & (TABLE_SIZE - 1);
    }
}

/// A header value (JSON null is stored as absent: `h.get()` answers None either way).
pub enum Value<'a> {
    /// JSON null after an earlier value of the same key (reads as absent; keeps `vals` bounded).
    Null,
    Str(Cow<'a, str>),
    List(Vec<Cow<'a, str>>),
    /// Anything else orjson decoded (number, bool, object, list with non-strings).
    Py(Py<PyAny>),
}

pub struct Headers<'a, 'py> {
    pub py: Python<'py>,
    idx: [u8; NKEYS],
    vals: Vec<Value<'a>>,
    /// `_body` (`EslEvent.body`).
    pub body: Option<Cow<'a, str>>,
}

/// `"|".join(...)`, `str()` and friends can raise: the normalizer then raises the same Python error.
pub enum Fail {
    Nz(&'static str, String),
    Py(PyErr),
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::Py(e)
    }
}

pub type R<T> = Result<T, Fail>;

pub fn nz<T>(reason: &'static str, detail: String) -> R<T> {
    Err(Fail::Nz(reason, detail))
}

impl<'a, 'py> Headers<'a, 'py> {
    pub fn new(py: Python<'py>) -> Self {
        Headers { py, idx: [ABSENT; NKEYS], vals: Vec::with_capacity(48), body: None }
    }

    /// Last wins, like a dict built from the JSON object.
    #[inline]
    pub fn set(&mut self, id: u8, value: Option<Value<'a>>) {
        let slot = self.idx[id as usize];
        match value {
            Some(v) => {
                if slot == ABSENT {
                    self.idx[id as usize] = self.vals.len() as u8;
                    self.vals.push(v);
                } else {
                    self.vals[slot as usize] = v;
                }
            }
            None => {
                // null: absent for every read
                if slot != ABSENT {
                    self.vals[slot as usize] = Value::Null;
                }
            }
        }
    }

    #[inline]
    pub fn get(&self, k: K) -> Option<&Value<'a>> {
        let slot = self.idx[k as usize];
        if slot == ABSENT {
            return None;
        }
        match &self.vals[slot as usize] {
            Value::Null => None,
            v => Some(v),
        }
    }

    /// The value when it is a `str` (`type(v) is str`).
    #[inline]
    pub fn str(&self, k: K) -> Option<&str> {
        match self.get(k) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// A non-empty `str` (`v and type(v) is str`).
    #[inline]
    pub fn str_nonempty(&self, k: K) -> Option<&str> {
        self.str(k).filter(|s| !s.is_empty())
    }

    /// `h.get(k) == lit`
    #[inline]
    pub fn eq(&self, k: K, lit: &str) -> bool {
        self.str(k) == Some(lit)
    }

    /// Whether `h.get(k)` can be a dict key (lists and dicts cannot: TypeError).
    pub fn hashable(&self, k: K) -> bool {
        match self.get(k) {
            None | Some(Value::Null) | Some(Value::Str(_)) => true,
            Some(Value::List(_)) => false,
            Some(Value::Py(o)) => o.bind(self.py).hash().is_ok(),
        }
    }

    /// `esl_values.json_type()`: the JSON type the value of `k` came as.
    pub fn json_type(&self, k: K) -> String {
        match self.get(k) {
            None | Some(Value::Null) => "null".to_owned(),
            Some(Value::Str(_)) => "string".to_owned(),
            Some(Value::List(_)) => "array".to_owned(),
            Some(Value::Py(o)) => {
                let o = o.bind(self.py);
                if o.is_exact_instance_of::<PyBool>() {
                    "boolean".to_owned()
                } else if o.is_exact_instance_of::<PyInt>() || o.is_exact_instance_of::<PyFloat>() {
                    "number".to_owned()
                } else if o.is_exact_instance_of::<PyDict>() {
                    "object".to_owned()
                } else if o.is_exact_instance_of::<PyList>() {
                    "array".to_owned()
                } else {
                    o.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".to_owned())
                }
            }
        }
    }

    /// `esl_values.bad_header()`: the value of `k` is another JSON type than a string.
    pub fn bad_header<T>(&self, k: K) -> R<T> {
        nz("bad-header", format!("{} is a JSON {}, not a string", NAMES[k as usize], self.json_type(k)))
    }

    /// `esl_values.odd_value()`: a shape FreeSWITCH never sends (neither a string nor a list of
    /// strings: those are `Value::Str` / `Value::List`, everything else is kept as `Value::Py`).
    #[inline]
    pub fn odd(&self, k: K) -> bool {
        matches!(self.get(k), Some(Value::Py(_)))
    }

    /// `esl_values.checked()`: `h.get(k)` for a header that is only tested or compared; a string or a
    /// list of strings as it came, else (`Value::Py`: number, bool, object, odd list) `bad-header`.
    #[inline]
    pub fn checked(&self, k: K) -> R<Option<&Value<'a>>> {
        match self.get(k) {
            Some(Value::Py(_)) => self.bad_header(k),
            v => Ok(v),
        }
    }

    /// `v = checked(h, k)`, then `v if type(v) is str`.
    #[inline]
    pub fn str_checked(&self, k: K) -> R<Option<&str>> {
        Ok(match self.checked(k)? {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        })
    }

    /// `v = checked(h, k)`, then `v if v and type(v) is str`.
    #[inline]
    pub fn str_nonempty_checked(&self, k: K) -> R<Option<&str>> {
        Ok(self.str_checked(k)?.filter(|s| !s.is_empty()))
    }

    /// `checked(h, k) == lit`
    #[inline]
    pub fn eq_checked(&self, k: K, lit: &str) -> R<bool> {
        Ok(self.str_checked(k)? == Some(lit))
    }

    /// `bool(checked(h, k))`: no Python call, an odd value has raised already.
    #[inline]
    pub fn truthy_checked(&self, k: K) -> R<bool> {
        Ok(match self.checked(k)? {
            Some(Value::Str(s)) => !s.is_empty(),
            Some(Value::List(v)) => !v.is_empty(),
            None | Some(Value::Null) | Some(Value::Py(_)) => false,
        })
    }

    /// `"|".join()` of a Python value: a list of strings, else `bad-header` (TypeError of the join).
    fn join_py(&self, k: K, o: &Py<PyAny>) -> R<String> {
        let o = o.bind(self.py);
        if o.is_exact_instance_of::<PyList>() {
            match pyfmt::join(self.py, o) {
                Ok(s) => return Ok(s),
                Err(e) if e.is_instance_of::<pyo3::exceptions::PyTypeError>(self.py) => {}
                Err(e) => return Err(Fail::Py(e)),
            }
        }
        self.bad_header(k)
    }

    /// `esl_values.text()`: None, the string, or the list of strings joined with `|`; else `bad-header`.
    #[inline]
    pub fn text(&self, k: K) -> R<Option<Cow<'_, str>>> {
        Ok(match self.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::Str(s)) => Some(Cow::Borrowed(&**s)),
            Some(Value::List(items)) => Some(Cow::Owned(items.join("|"))),
            Some(Value::Py(o)) => Some(Cow::Owned(self.join_py(k, o)?)),
        })
    }

    /// `esl_values.nonempty()`: as `text()`, with `""` and `[]` read as absent.
    pub fn nonempty(&self, k: K) -> R<Option<Cow<'_, str>>> {
        Ok(match self.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::Str(s)) => (!s.is_empty()).then(|| Cow::Borrowed(&**s)),
            Some(Value::List(items)) => (!items.is_empty()).then(|| Cow::Owned(items.join("|"))),
            Some(Value::Py(o)) => {
                if o.bind(self.py).is_exact_instance_of::<PyList>() && !o.bind(self.py).is_truthy()? {
                    None
                } else {
                    Some(Cow::Owned(self.join_py(k, o)?))
                }
            }
        })
    }

    /// `h.get(k)` as the Python object the Python normalizer sees (for error details).
    pub fn py_value(&self, k: K) -> Py<PyAny> {
        let py = self.py;
        match self.get(k) {
            None | Some(Value::Null) => py.None(),
            Some(Value::Str(s)) => PyString::new(py, s).into_any().unbind(),
            Some(Value::List(items)) => {
                let list = PyList::new(py, items.iter().map(|s| PyString::new(py, s))).expect("list");
                list.into_any().unbind()
            }
            Some(Value::Py(o)) => o.clone_ref(py),
        }
    }

    /// `f"{h.get(k)}"`
    pub fn fmt(&self, k: K) -> R<String> {
        Ok(pyfmt::str_of(self.py, self.py_value(k).bind(self.py))?)
    }

    /// `repr(str(h.get(k))[:n])`
    pub fn repr_trunc(&self, k: K, n: usize) -> R<String> {
        Ok(pyfmt::repr_str_trunc(self.py, self.py_value(k).bind(self.py), n)?)
    }
}

/// Python `a or b` for optional strings: `a` when non-empty, else `b`.
#[inline]
pub fn or_str<'x>(a: Option<Cow<'x, str>>, b: impl FnOnce() -> R<Option<Cow<'x, str>>>) -> R<Option<Cow<'x, str>>> {
    match a {
        Some(s) if !s.is_empty() => Ok(Some(s)),
        _ => b(),
    }
}

/// Python `a or b` for optional ints (0 is falsy).
#[inline]
pub fn or_int(a: Option<i64>, b: impl FnOnce() -> Option<i64>) -> Option<i64> {
    match a {
        Some(v) if v != 0 => Some(v),
        _ => b(),
    }
}
