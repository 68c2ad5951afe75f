"""A residential gateway's MIB: system, its WAN interface, and the ponctlGateway scalars."""

from __future__ import annotations

from simulator.config.errors import RpcError
from simulator.devices import Gateway
from simulator.snmp import oids as o
from simulator.snmp.smi import (
    MibView,
    Scalars,
    SetError,
    Syntax,
    WriteItem,
    octets,
    printable,
    unsigned,
)
from simulator.snmp.system import DeviceMib, Interface

_URL = (*o.GATEWAY_PHAN_URL, 0)
_VLAN = (*o.GATEWAY_WAN_VLAN, 0)


def mac_octets(mac: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (or with dashes, or bare hex) as the 6 octets of a PhysAddress."""
    digits = mac.replace(":", "").replace("-", "").replace(".", "")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        return mac.encode()


class GatewayMib(DeviceMib):
    """ponctlGateway of one gateway; writes go through ``Gateway.set``, which validates."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway, f"{gateway.model} residential gateway, firmware "
                                  f"{gateway.firmware} (ponctl simulator)", services=78)
        self.gateway = gateway
        self.set_interfaces([Interface(1, "wan", o.IF_TYPE_ETHERNET, lambda: gateway.reachable)])
        scalars = Scalars({
            o.GATEWAY_SERIAL: lambda: octets(gateway.serial),
            o.GATEWAY_MAC: lambda: octets(mac_octets(gateway.mac)),
            o.GATEWAY_PHAN_URL: lambda: octets(gateway.phan_url),
            o.GATEWAY_WAN_VLAN: lambda: unsigned(gateway.wan_vlan),
        })
        self.view = MibView([self.system, self.if_table, scalars])

    def write(self, items: list[WriteItem]) -> None:
        url: tuple[int, str] | None = None
        vlan: tuple[int, int] | None = None
        for i, item in enumerate(items):
            if item.oid == _URL:
                if item.syntax != Syntax.OCTETS or not isinstance(item.data, bytes):
                    raise SetError("wrongType", i, "an OCTET STRING is expected")
                url = (i, printable(item.data, "ponctlGatewayPhanUrl", i, max_len=255))
            elif item.oid == _VLAN:
                if item.syntax != Syntax.UNSIGNED or not isinstance(item.data, int):
                    raise SetError("wrongType", i, "an Unsigned32 is expected")
                if not 0 <= item.data <= 4094:
                    raise SetError("wrongValue", i, f"{item.data} is out of range 0..4094")
                vlan = (i, item.data)
            else:
                raise SetError("notWritable", i, "not a writable object")
        if url is None and vlan is None:
            return
        first = min(x[0] for x in (url, vlan) if x is not None)
        if self.gateway.faults.refuse_commit:
            raise SetError("commitFailed", first, self.gateway.faults.refuse_commit)
        try:
            self.gateway.set(phan_url=url[1] if url else None, wan_vlan=vlan[1] if vlan else None)
        except RpcError as err:
            blame = vlan if vlan is not None and "wan-vlan" in str(err) else url or vlan
            raise SetError("wrongValue", blame[0] if blame else first, str(err)) from err
