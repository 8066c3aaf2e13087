//! `ccod_fs.ingest.node_events`: SIP registrations, background job results, heartbeats.

use std::borrow::Cow;

use crate::envelope::{Builder, Payload};
use crate::headers::{nz, or_str, Headers, K, R};
use crate::normalize::Core;
use crate::pyfmt;
use crate::values::{dial_vars, is_tenant_id, py_strip, small_int, take_chars, var};

const MAX_RESULT_CHARS: usize = 4096;

/// agent.registered / agent.unregistered.
pub fn register(nz: &mut Core, h: &Headers, b: &mut Builder, event_type: &str) -> R<()> {
    let user = or_str(h.nonempty(K::Username)?, || or_str(h.nonempty(K::FromUser)?, || h.nonempty(K::User)))?;
    let Some(user) = user else {
        return crate::headers::nz("missing-header", format!("{} without user", h.fmt(K::EventSubclass)?));
    };
    let realm = or_str(h.nonempty(K::Realm)?, || or_str(h.nonempty(K::FromHost)?, || h.nonempty(K::Host)))?;
    let domain: Option<Cow<str>> = or_str(h.nonempty(K::DomainName)?, || Ok(realm.clone()))?;
    // `checked()`: a number, boolean or object is bad-header (not invalid-tenant, nor absent when falsy).
    let tenant = if h.truthy_checked(K::CcodTenant)? {
        nz.tenant_value_of(h, K::CcodTenant)?
    } else {
        let truthy_domain = domain.as_deref().filter(|d| !d.is_empty());
        let mut found = truthy_domain.and_then(|d| nz.agents.domain_tenants.get(d).cloned());
        if found.is_none() {
            if let Some(d) = truthy_domain {
                if nz.agents.domain_is_tenant && is_tenant_id(d) {
                    found = Some(d.to_owned());
                }
            }
        }
        match found {
            Some(t) => t,
            None => {
                let py = h.py;
                return self::nz_unresolved(format!(
                    "no tenant for SIP user {} in domain {}",
                    pyfmt::repr_trunc(py, &user, 64)?,
                    pyfmt::repr_opt(py, domain.as_deref())?
                ));
            }
        }
    };
    let p = Payload::new()
        .s("user", &user)
        .os("realm", realm.as_deref())
        .os("contact", h.text(K::Contact)?.as_deref())
        .oi("expires_s", small_int(h.get(K::Expires)))
        .os("network_ip", h.text(K::NetworkIp)?.as_deref())
        .os("user_agent", h.text(K::UserAgent)?.as_deref())
        .done();
    b.add(event_type, p, &tenant, None, None, None);
    Ok(())
}

fn nz_unresolved(detail: String) -> R<()> {
    nz("registration-tenant-unresolved", detail)
}

/// command.result
pub fn background_job(nz: &mut Core, h: &Headers, b: &mut Builder) -> R<()> {
    let Some(job) = h.nonempty(K::JobUuid)? else {
        return crate::headers::nz("missing-header", "BACKGROUND_JOB without Job-UUID".to_owned());
    };
    let result = py_strip(h.body.as_deref().unwrap_or(""));
    let arg = h.text(K::JobCommandArg)?;
    let variables = match arg.as_deref() {
        Some(a) if !a.is_empty() => dial_vars(a),
        _ => Vec::new(),
    };
    let tenant = match var(&variables, "ccod_tenant") {
        Some(raw) if !raw.is_empty() => nz.tenant_value_str(h, raw)?,
        _ => nz.system_tenant.clone(),
    };
    let ok = !(result.starts_with("-ERR") || result.starts_with("-USAGE"));
    let mut call_id: Option<String> = var(&variables, "origination_uuid").map(str::to_owned);
    if ok && call_id.is_none() && result.starts_with("+OK ") && h.text(K::JobCommand)?.as_deref() == Some("originate") {
        let id = py_strip(&result[4..]);
        call_id = if id.is_empty() { None } else { Some(id.to_owned()) };
    }
    let p = Payload::new()
        .s("job_uuid", &job)
        .os("command", h.text(K::JobCommand)?.as_deref())
        .b("ok", ok)
        .s("result", take_chars(result, MAX_RESULT_CHARS))
        .os("decision_id", var(&variables, "ccod_decision_id"))
        .done();
    b.add("command.result", p, &tenant, call_id.as_deref(), None, None);
    Ok(())
}

/// node.heartbeat
pub fn heartbeat(nz: &mut Core, h: &Headers, b: &mut Builder) -> R<()> {
    let p = Payload::new()
        .oi("uptime_ms", small_int(h.get(K::UptimeMsec)))
        .oi("session_count", small_int(h.get(K::SessionCount)))
        .os("version", h.text(K::Version)?.as_deref())
        .done();
    let tenant = nz.system_tenant.clone();
    b.add("node.heartbeat", p, &tenant, None, None, None);
    Ok(())
}
