"""The simulator's SNMP face: PONCTL-MIB (plus system and IF-MIB) served by pysnmp.

Layers, from the wire up: ``wire`` (raw datagrams under faults), ``engine`` (pysnmp engines,
sockets, credentials, command responders, notifications), ``olt_mib`` / ``gateway_mib``
(what a device serves and how a SET changes it, free of pysnmp), ``provision`` (row operations
as edits of the BBF configuration), ``smi`` (values, tables), and ``agent`` (the public face).
"""

from simulator.snmp.agent import SnmpAgent

__all__ = ["SnmpAgent"]
