"""What every device's MIB has: the system group, the IF-MIB subset, and the MIB interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from simulator.devices import Device, DeviceEvent
from simulator.snmp import oids as o
from simulator.snmp.smi import (
    MibView,
    Missing,
    Oid,
    Scalars,
    Table,
    Value,
    WriteItem,
    integer,
    octets,
    oid_value,
    ticks,
)

CONTACT = "ponctl lab operator"
LOCATION = "ponctl lab (simulated hardware)"


@dataclass(frozen=True, slots=True)
class Interface:
    """One row of the IF-MIB ifTable."""

    index: int
    descr: str
    if_type: int
    oper_up: Callable[[], bool]


class DeviceMib(ABC):
    """The MIB a device serves; values are read from the device on every request.

    Subclasses keep what is costly to recompute (the sorted row indexes of big tables) and
    refresh it in ``refresh()`` only when the device state it depends on changed.
    """

    def __init__(self, device: Device, descr: str, services: int) -> None:
        self.device = device
        self.interfaces: list[Interface] = []
        self.system = Scalars({
            o.SYS_DESCR: lambda: octets(descr),
            o.SYS_OBJECT_ID: lambda: oid_value(o.PONCTL),
            o.SYS_UPTIME: lambda: ticks(device.uptime_ticks()),
            o.SYS_CONTACT: lambda: octets(CONTACT),
            o.SYS_NAME: lambda: octets(device.name),
            o.SYS_LOCATION: lambda: octets(LOCATION),
            o.SYS_SERVICES: lambda: integer(services),
            o.IF_NUMBER: lambda: integer(len(self.interfaces)),
        })
        self.if_table: Table[Interface] = Table(o.IF_ENTRY, tuple(o.IfColumn), _if_cell)
        self.view = MibView([])

    def set_interfaces(self, interfaces: list[Interface]) -> None:
        self.interfaces = interfaces
        self.if_table.load({(i.index,): i for i in interfaces})

    def refresh(self) -> None:  # noqa: B027 - an optional hook; the base caches nothing
        """Bring cached structure up to date with the device (cheap when nothing changed)."""

    def get(self, oid: Oid) -> Value | Missing:
        self.refresh()
        return self.view.get(oid)

    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
        self.refresh()
        return self.view.next(oid)

    @abstractmethod
    def write(self, items: list[WriteItem]) -> None:
        """Apply a SET PDU atomically, or raise SetError and change nothing."""

    def on_event(self, event: DeviceEvent) -> None:  # noqa: B027 - an optional hook
        """Follow a device event (called synchronously from the device's listeners)."""


def _if_cell(column: int, row: Interface) -> Value | None:
    if column == o.IfColumn.INDEX:
        return integer(row.index)
    if column == o.IfColumn.DESCR:
        return octets(row.descr)
    if column == o.IfColumn.TYPE:
        return integer(row.if_type)
    if column == o.IfColumn.ADMIN_STATUS:
        return integer(o.UP)
    if column == o.IfColumn.OPER_STATUS:
        return integer(o.UP if row.oper_up() else o.DOWN)
    return None
