"""Which tenant a mod_callcenter agent belongs to, and its last status/state.

``agent-status-change`` and ``agent-state-change`` are bare events: only the
agent name (``CC-Agent``, e.g. ``1000@default``). The tenant is resolved, first
match wins:

1. the ``ccod_tenant`` variable of the agent's own contact string
   (``[ccod_tenant=acme,...]user/1000@...``), read from
   ``callcenter_config agent list`` on connect (:meth:`Normalizer.resync_agents`)
   and from ``agent-contact-change`` (``CC-Agent-Contact``);
2. ``agent_tenants``: configured full agent name -> tenant;
3. ``variable_ccod_tenant`` seen on the agent's legs (``variable_cc_agent``): it
   is the contact string's value, but ``cc_export_vars`` may have overwritten it
   with the caller's, hence below explicit configuration;
4. ``domain_tenants``: configured domain (the part after ``@``) -> tenant;
5. with ``domain_is_tenant``, the domain itself (agents named ``<id>@<tenant>``).

Unresolved -> the normalizer dead-letters the event (reason
``agent-tenant-unresolved``) rather than guess: tenant isolation first.
Previous status/state are remembered so changes carry ``previous``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ccod_fs.ingest.esl_values import dial_vars, is_tenant_id


class AgentBook:
    __slots__ = ("agent_tenants", "contact_tenants", "domain_is_tenant", "domain_tenants", "leg_tenants", "state",
                 "status")

    def __init__(
        self,
        agent_tenants: Mapping[str, str] | None = None,
        domain_tenants: Mapping[str, str] | None = None,
        domain_is_tenant: bool = False,
    ) -> None:
        self.agent_tenants = dict(agent_tenants or {})
        self.domain_tenants = dict(domain_tenants or {})
        self.domain_is_tenant = domain_is_tenant
        self.contact_tenants: dict[str, str] = {}
        self.leg_tenants: dict[str, str] = {}
        self.status: dict[str, str] = {}
        self.state: dict[str, str] = {}

    def learn_leg(self, agent: str, tenant: str) -> None:
        self.leg_tenants[agent] = tenant

    def learn_contact(self, agent: str, contact: str) -> None:
        tenant = dial_vars(contact).get("ccod_tenant")
        if tenant and is_tenant_id(tenant):
            self.contact_tenants[agent] = tenant

    def tenant_of(self, agent: str) -> str | None:
        tenant = self.contact_tenants.get(agent) or self.agent_tenants.get(agent) or self.leg_tenants.get(agent)
        if tenant:
            return tenant
        _, at, domain = agent.rpartition("@")
        if not at:
            return None
        tenant = self.domain_tenants.get(domain)
        if tenant:
            return tenant
        if self.domain_is_tenant and is_tenant_id(domain):
            return domain
        return None

    def snapshot(self) -> dict[str, Any]:
        return {
            "contact_tenants": dict(self.contact_tenants),
            "leg_tenants": dict(self.leg_tenants),
            "status": dict(self.status),
            "state": dict(self.state),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.contact_tenants = dict(data.get("contact_tenants", {}))
        self.leg_tenants = dict(data.get("leg_tenants", {}))
        self.status = dict(data.get("status", {}))
        self.state = dict(data.get("state", {}))
