"""Numeric OIDs served by the simulator: SNMPv2-MIB system, an IF-MIB subset, PONCTL-MIB.

The PONCTL-MIB numbers are the ones listed in the header of configs/mibs/PONCTL-MIB.txt.
"""

from __future__ import annotations

import enum

from simulator.snmp.smi import Oid

# SNMPv2-MIB
SYSTEM: Oid = (1, 3, 6, 1, 2, 1, 1)
SYS_DESCR: Oid = (*SYSTEM, 1)
SYS_OBJECT_ID: Oid = (*SYSTEM, 2)
SYS_UPTIME: Oid = (*SYSTEM, 3)
SYS_CONTACT: Oid = (*SYSTEM, 4)
SYS_NAME: Oid = (*SYSTEM, 5)
SYS_LOCATION: Oid = (*SYSTEM, 6)
SYS_SERVICES: Oid = (*SYSTEM, 7)
SNMP_TRAP_OID: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1)

# IF-MIB
IF_NUMBER: Oid = (1, 3, 6, 1, 2, 1, 2, 1)
IF_ENTRY: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1)


class IfColumn(enum.IntEnum):
    INDEX = 1
    DESCR = 2
    TYPE = 3
    ADMIN_STATUS = 7
    OPER_STATUS = 8


IF_TYPE_ETHERNET = 6  # IANAifType ethernetCsmacd
IF_TYPE_GPON = 250  # IANAifType gpon

# PONCTL-MIB
ENTERPRISE: Oid = (1, 3, 6, 1, 4, 1, 32473)  # RFC 5612 documentation enterprise
PONCTL: Oid = (*ENTERPRISE, 1)
ONT_DISCOVERED: Oid = (*PONCTL, 0, 1)
ONT_UP: Oid = (*PONCTL, 0, 2)
ONT_DOWN: Oid = (*PONCTL, 0, 3)
OBJECTS: Oid = (*PONCTL, 1)
PON_PORT_ENTRY: Oid = (*OBJECTS, 1, 1)
ONT_ENTRY: Oid = (*OBJECTS, 2, 1)
SERVICE_ENTRY: Oid = (*OBJECTS, 3, 1)
AUTOFIND_ENTRY: Oid = (*OBJECTS, 4, 1)
UPLINK_ENTRY: Oid = (*OBJECTS, 5, 1)
UPLINK_VLAN_ENTRY: Oid = (*OBJECTS, 6, 1)
GATEWAY: Oid = (*OBJECTS, 7)
GATEWAY_SERIAL: Oid = (*GATEWAY, 1)
GATEWAY_MAC: Oid = (*GATEWAY, 2)
GATEWAY_PHAN_URL: Oid = (*GATEWAY, 3)
GATEWAY_WAN_VLAN: Oid = (*GATEWAY, 4)


class PonPortColumn(enum.IntEnum):
    NAME = 2
    OPER_STATUS = 3
    ONT_COUNT = 4


class OntColumn(enum.IntEnum):
    SERIAL = 2
    DESCRIPTION = 3
    ADMIN_STATUS = 4
    OPER_STATUS = 5
    RX_POWER = 6
    TX_POWER = 7
    MODEL = 8
    FIRMWARE = 9
    ROW_STATUS = 10


class ServiceColumn(enum.IntEnum):
    UNI = 2
    C_VLAN = 3
    S_VLAN = 4
    PROFILE = 5
    GEM_PORT = 6
    APPLIED = 7
    ROW_STATUS = 8


class AutofindColumn(enum.IntEnum):
    SERIAL = 2
    MODEL = 3
    FIRMWARE = 4


UPLINK_NAME = 2
UPLINK_VLAN_STATUS = 2


class RowStatus(enum.IntEnum):
    """SNMPv2-TC RowStatus (RFC 2579)."""

    ACTIVE = 1
    NOT_IN_SERVICE = 2
    NOT_READY = 3
    CREATE_AND_GO = 4
    CREATE_AND_WAIT = 5
    DESTROY = 6


class OntOperStatus(enum.IntEnum):
    NOT_PRESENT = 1
    RANGING = 2
    OPERATIONAL = 3
    LOS = 4
    DYING_GASP = 5


TRUE = 1  # TruthValue
FALSE = 2
UP = 1
DOWN = 2
