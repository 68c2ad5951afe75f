"""SNMP driver: an async manager client, a trap/inform receiver, and the driver contract.

Layers, from pysnmp up: ``varbind`` (typed values, no pysnmp), ``mib`` (names <-> OIDs from
the project's MIB files), ``edge`` (pysnmp objects and errors <-> ours: the one place they
are converted), ``target`` (where and how), ``client`` (one engine, one socket, requests),
``traps`` (notification receiver), ``driver`` (the contract of ``drivers.base``).
"""

from drivers.snmp.client import SnmpClient
from drivers.snmp.driver import SnmpDriver
from drivers.snmp.mib import MibResolver, UnknownObjectError, default_resolver
from drivers.snmp.target import SnmpTarget
from drivers.snmp.traps import EventStream, TrapReceiver, TrapUser
from drivers.snmp.varbind import RowStatus, Typed, Varbind, VarType

__all__ = ["EventStream", "MibResolver", "RowStatus", "SnmpClient", "SnmpDriver", "SnmpTarget",
           "TrapReceiver", "TrapUser", "Typed", "UnknownObjectError", "VarType", "Varbind",
           "default_resolver"]
