"""The NETCONF face of the simulated devices: NETCONF 1.0/1.1 over SSH.

Layers, each in its own module: ``framing`` (bytes <-> messages), ``capabilities`` (hello),
``rpc`` (parse requests, build replies), ``filters`` (subtree filtering on the config tree),
``state`` (operational state and notifications), ``operations`` (what each RPC does to the
device), ``server`` (asyncssh server and sessions: the only module doing I/O).
"""

from simulator.netconf.server import NetconfServer

__all__ = ["NetconfServer"]
