//! `ccod_fs.ingest.envelopes` + `serialize_event`: canonical events as the exact bytes orjson writes
//! for the model's `__dict__` (field declaration order, `OPT_UTC_Z`, every field present).

use sha1::{Digest, Sha1};
use std::sync::OnceLock;

/// `EVENT_ID_NAMESPACE`, 6f1d3c2e-8a4b-5c6d-9e0f-1a2b3c4d5e6f.
const EVENT_ID_NAMESPACE: [u8; 16] =
    [0x6f, 0x1d, 0x3c, 0x2e, 0x8a, 0x4b, 0x5c, 0x6d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f];
const SERVICE: &str = "esl-ingest";
const SCHEMA_VERSION: u32 = 1;
const HEX: &[u8; 16] = b"0123456789abcdef";

fn namespace_sha1() -> &'static Sha1 {
    static NS: OnceLock<Sha1> = OnceLock::new();
    NS.get_or_init(|| {
        let mut h = Sha1::new();
        h.update(EVENT_ID_NAMESPACE);
        h
    })
}

/// UUIDv5 of `f"{core_uuid}:{sequence}:{index}"`, written as 36 lowercase hex chars with dashes.
pub fn write_event_id(out: &mut Vec<u8>, core_uuid: &str, sequence: u64, index: usize) {
    let mut h = namespace_sha1().clone();
    h.update(core_uuid.as_bytes());
    let mut tail = [0u8; 48];
    let n = {
        use std::io::Write;
        let mut cur = std::io::Cursor::new(&mut tail[..]);
        write!(cur, ":{sequence}:{index}").expect("fits");
        cur.position() as usize
    };
    h.update(&tail[..n]);
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    for (i, byte) in b.iter().enumerate() {
        if i == 4 || i == 6 || i == 8 || i == 10 {
            out.push(b'-');
        }
        out.push(HEX[(byte >> 4) as usize]);
        out.push(HEX[(byte & 15) as usize]);
    }
}

/// A JSON string as orjson writes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        out.extend_from_slice(&b[start..i]);
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

pub fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_int(out: &mut Vec<u8>, v: i64) {
    use std::io::Write;
    write!(out, "{v}").expect("vec");
}

/// CPython's `_PyTime_RoundHalfEven`.
fn round_half_even(x: f64) -> f64 {
    let rounded = x.round();
    if (x - rounded).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        rounded
    }
}

/// `datetime_from_us(us)` = `datetime.fromtimestamp((us // 1000) / 1000, tz=UTC)`: (epoch s, µs),
/// with CPython's float arithmetic (modf, x 1e6, round half even).
fn from_timestamp(us: i64) -> (i64, u32) {
    let d = (us.div_euclid(1000)) as f64 / 1000.0;
    let mut intpart = d.trunc();
    let mut frac = (d - intpart) * 1e6;
    frac = round_half_even(frac);
    if frac >= 1e6 {
        frac -= 1e6;
        intpart += 1.0;
    } else if frac < 0.0 {
        frac += 1e6;
        intpart -= 1.0;
    }
    (intpart as i64, frac as u32)
}

/// Civil date of days since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn push2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// `"2026-11-26T01:02:03.456000Z"` (no fraction when the µs are 0), as orjson with OPT_UTC_Z.
pub fn write_datetime(out: &mut Vec<u8>, us: i64) {
    let (secs, micros) = from_timestamp(us);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil(days);
    out.push(b'"');
    let y = y as u32;
    push2(out, y / 100);
    push2(out, y % 100);
    out.push(b'-');
    push2(out, m);
    out.push(b'-');
    push2(out, d);
    out.push(b'T');
    push2(out, sod / 3600);
    out.push(b':');
    push2(out, sod / 60 % 60);
    out.push(b':');
    push2(out, sod % 60);
    if micros != 0 {
        out.push(b'.');
        push2(out, micros / 10_000);
        push2(out, micros / 100 % 100);
        push2(out, micros % 100);
    }
    out.extend_from_slice(b"Z\"");
}

/// Builds one payload object, fields in declaration order.
pub struct Payload {
    buf: Vec<u8>,
}

impl Payload {
    pub fn new() -> Payload {
        let mut buf = Vec::with_capacity(256);
        buf.push(b'{');
        Payload { buf }
    }

    #[inline]
    fn key(&mut self, name: &str) -> &mut Vec<u8> {
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        self.buf.push(b'"');
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\":");
        &mut self.buf
    }

    pub fn s(mut self, name: &str, v: &str) -> Self {
        write_str(self.key(name), v);
        self
    }

    pub fn os(mut self, name: &str, v: Option<&str>) -> Self {
        write_opt_str(self.key(name), v);
        self
    }

    pub fn i(mut self, name: &str, v: i64) -> Self {
        write_int(self.key(name), v);
        self
    }

    pub fn oi(mut self, name: &str, v: Option<i64>) -> Self {
        match v {
            Some(v) => write_int(self.key(name), v),
            None => self.key(name).extend_from_slice(b"null"),
        }
        self
    }

    pub fn b(mut self, name: &str, v: bool) -> Self {
        self.key(name).extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    /// A `UtcMs` timestamp from epoch µs.
    pub fn t(mut self, name: &str, us: i64) -> Self {
        write_datetime(self.key(name), us);
        self
    }

    pub fn ot(mut self, name: &str, us: Option<i64>) -> Self {
        match us {
            Some(us) => write_datetime(self.key(name), us),
            None => self.key(name).extend_from_slice(b"null"),
        }
        self
    }

    pub fn done(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

impl Default for Payload {
    fn default() -> Self {
        Self::new()
    }
}

/// `EventBuilder`: the canonical events of one ESL event, as (tenant, serialized bytes).
pub struct Builder {
    pub node: Option<String>,
    pub core_uuid: String,
    pub sequence: u64,
    pub ts_us: i64,
    pub out: Vec<(String, Vec<u8>)>,
}

impl Builder {
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        event_type: &str,
        payload: Vec<u8>,
        tenant: &str,
        call_id: Option<&str>,
        agent_id: Option<&str>,
        queue_id: Option<&str>,
    ) {
        let mut o = Vec::with_capacity(payload.len() + 400);
        o.extend_from_slice(b"{\"event_id\":\"");
        write_event_id(&mut o, &self.core_uuid, self.sequence, self.out.len());
        o.extend_from_slice(b"\",\"type\":\"");
        o.extend_from_slice(event_type.as_bytes());
        o.extend_from_slice(b"\",\"schema_version\":");
        write_int(&mut o, SCHEMA_VERSION as i64);
        o.extend_from_slice(b",\"tenant_id\":");
        write_str(&mut o, tenant);
        o.extend_from_slice(b",\"occurred_at\":");
        write_datetime(&mut o, self.ts_us);
        o.extend_from_slice(b",\"source\":{\"service\":\"");
        o.extend_from_slice(SERVICE.as_bytes());
        o.extend_from_slice(b"\",\"node\":");
        write_opt_str(&mut o, self.node.as_deref());
        o.extend_from_slice(b",\"core_uuid\":");
        write_str(&mut o, &self.core_uuid);
        o.extend_from_slice(b",\"event_sequence\":");
        write_int(&mut o, self.sequence as i64);
        o.extend_from_slice(b"},\"call_id\":");
        write_opt_str(&mut o, call_id);
        o.extend_from_slice(b",\"agent_id\":");
        write_opt_str(&mut o, agent_id);
        o.extend_from_slice(b",\"queue_id\":");
        write_opt_str(&mut o, queue_id);
        o.extend_from_slice(b",\"payload\":");
        o.extend_from_slice(&payload);
        o.push(b'}');
        self.out.push((tenant.to_owned(), o));
    }
}

/// `span_ms()`: end - start of the ms-truncated timestamps, >= 0.
#[inline]
pub fn span_ms(start_us: Option<i64>, end_us: Option<i64>) -> Option<i64> {
    match (start_us, end_us) {
        (Some(s), Some(e)) => Some((e.div_euclid(1000) - s.div_euclid(1000)).max(0)),
        _ => None,
    }
}
