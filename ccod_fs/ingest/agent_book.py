"""Which tenant a mod_callcenter agent belongs to, and its last status/state.

``agent-status-change`` and ``agent-state-change`` are bare events: only the
agent name (``CC-Agent``, e.g. ``1000@default``). The tenant is resolved, first
match wins:

1. learned from the switch: the ``ccod_tenant`` variable of the agent's contact
   string (``[ccod_tenant=acme,...]user/1000@...``), seen on every agent leg
   (``variable_cc_agent`` + ``variable_ccod_tenant``) and in
   ``agent-contact-change`` (``CC-Agent-Contact``);
2. ``agent_tenants``: configured full agent name -> tenant;
3. ``domain_tenants``: configured domain (the part after ``@``) -> tenant;
4. with ``domain_is_tenant``, the domain itself (agents named ``<id>@<tenant>``).

Unresolved -> the normalizer dead-letters the event (reason
``agent-tenant-unresolved``) rather than guess: tenant isolation first.
Previous status/state are remembered so changes carry ``previous``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ccod_fs.ingest.esl_values import dial_vars, is_tenant_id


class AgentBook:
    __slots__ = ("agent_tenants", "domain_is_tenant", "domain_tenants", "learned", "state", "status")

    def __init__(
        self,
        agent_tenants: Mapping[str, str] | None = None,
        domain_tenants: Mapping[str, str] | None = None,
        domain_is_tenant: bool = False,
    ) -> None:
        self.agent_tenants = dict(agent_tenants or {})
        self.domain_tenants = dict(domain_tenants or {})
        self.domain_is_tenant = domain_is_tenant
        self.learned: dict[str, str] = {}
        self.status: dict[str, str] = {}
        self.state: dict[str, str] = {}

    def learn(self, agent: str, tenant: str) -> None:
        if self.learned.get(agent) != tenant:
            self.learned[agent] = tenant

    def learn_contact(self, agent: str, contact: str) -> None:
        tenant = dial_vars(contact).get("ccod_tenant")
        if tenant and is_tenant_id(tenant):
            self.learn(agent, tenant)

    def tenant_of(self, agent: str) -> str | None:
        tenant = self.learned.get(agent) or self.agent_tenants.get(agent)
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
        return {"learned": dict(self.learned), "status": dict(self.status), "state": dict(self.state)}

    def restore(self, data: dict[str, Any]) -> None:
        self.learned = dict(data.get("learned", {}))
        self.status = dict(data.get("status", {}))
        self.state = dict(data.get("state", {}))
