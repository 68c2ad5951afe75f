"""Async NETCONF client over SSH (RFC 6241, 6242, 5277) behind the ``Driver`` contract.

Layers, each usable on its own: ``framing`` (bytes <-> messages), ``rpc`` (build requests,
parse replies; pure), ``session`` (one SSH channel: hello, pipelined requests matched by
message-id, notifications), ``driver`` (the contract).
"""

from drivers.errors import NetconfLockDeniedError
from drivers.netconf.driver import NetconfDriver, capabilities_from_hello
from drivers.netconf.rpc import Notification, Reply
from drivers.netconf.session import NetconfSession

__all__ = [
    "NetconfDriver",
    "NetconfLockDeniedError",
    "NetconfSession",
    "Notification",
    "Reply",
    "capabilities_from_hello",
]
