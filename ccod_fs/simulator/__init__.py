"""A protocol-faithful FreeSWITCH Event Socket simulator built from real captures.

FreeSWITCH cannot run on these machines, so the ingest, the demo, the tests and the
benchmarks talk to this instead: templates cut from real FreeSWITCH 1.11 +
mod_callcenter captures, scenarios that replay or extrapolate them, and a TCP
server that speaks the inbound Event Socket protocol.
"""
