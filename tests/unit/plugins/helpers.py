"""Shared by the plugin tests: the [[listen]] every test configuration starts with, contexts."""

from __future__ import annotations

from b2bua.routing import RequestContext
from b2bua.sip import Address, Request

#: The one [[listen]] table every test configuration starts with (lines 1-4).
LISTEN = '[[listen]]\ntransport = "udp"\nhost = "127.0.0.1"\nport = 5060\n'


def context(host: str = "192.0.2.1", port: int = 5060, transport: str = "UDP") -> RequestContext:
    """A RequestContext for a request from host:port, received on 127.0.0.1:5060."""
    return RequestContext(Address(transport, host, port), Address(transport, "127.0.0.1", 5060))


def invite(uri: str = "sip:1001@127.0.0.1") -> Request:
    """An INVITE to ``uri`` (routers look only at the Request-URI)."""
    return Request("INVITE", uri)
