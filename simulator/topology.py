"""The lab topology file (``configs/lab.yaml``): OLTs, PON ports, ONTs, gateways, faults.

Read through pydantic models; every error names the file, the field and the reason.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SERIAL_RE = re.compile(r"[A-Za-z0-9]{4}[0-9A-Fa-f]{8}")
PORT_RE = re.compile(r"\d{1,2}/\d{1,2}/\d{1,3}")
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")
MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")

Protocol = Literal["netconf", "snmp", "ssh"]
VlanId = Annotated[int, Field(ge=1, le=4094)]


class TopologyError(ValueError):
    """A topology file that cannot be used; the message names file, field and reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Credentials(_Model):
    username: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=64)


class SnmpV3(_Model):
    user: str = Field(min_length=1, max_length=32)
    auth_key: str = Field(min_length=8, max_length=64)
    priv_key: str = Field(min_length=8, max_length=64)
    auth_protocol: Literal["SHA", "SHA256", "SHA512"] = "SHA"
    priv_protocol: Literal["AES", "AES256"] = "AES"


class SnmpCredentials(_Model):
    community_ro: str = Field(default="public", min_length=1, max_length=32)
    community_rw: str = Field(default="private", min_length=1, max_length=32)
    v3: SnmpV3 = SnmpV3(user="ponctl", auth_key="ponctl-auth-key", priv_key="ponctl-priv-key")

    @model_validator(mode="after")
    def _distinct(self) -> SnmpCredentials:
        if self.community_ro == self.community_rw:
            raise ValueError("community_ro and community_rw must differ, or the read-only "
                             "community could write")
        return self


class Ports(_Model):
    """The port each face listens on, on every device's own address (0 = any free port)."""

    netconf: int = Field(default=8830, ge=0, le=65535)
    snmp: int = Field(default=8161, ge=0, le=65535)
    ssh: int = Field(default=8022, ge=0, le=65535)


class TrapTarget(_Model):
    address: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    version: Literal["v2c", "v3"] = "v2c"
    community: str = "public"

    @field_validator("address")
    @classmethod
    def _loopback(cls, v: str) -> str:
        ip = ipaddress.ip_address(v)
        if not ip.is_loopback:
            raise ValueError(f"{v} is not a loopback address: the lab only talks to this machine")
        return v


class GatewayModel(_Model):
    protocols: list[Protocol] = Field(min_length=1)
    vendor: str = "SimuLight"
    firmware: str = "R7.1"


class GatewaySpec(_Model):
    serial: str | None = None
    mac: str | None = None
    model: str
    uni: int = Field(default=1, ge=1, le=4)
    address: str | None = None
    name: str | None = None

    @field_validator("mac")
    @classmethod
    def _mac(cls, v: str | None) -> str | None:
        if v is not None and not MAC_RE.fullmatch(v.lower()):
            raise ValueError(f"{v!r} is not a MAC address like 02:00:00:00:00:01")
        return v.lower() if v else v


class ServiceSpec(_Model):
    uni: int = Field(default=1, ge=1, le=4)
    c_vlan: VlanId
    s_vlan: VlanId
    profile: str = Field(default="tdp-100M", pattern=r"^[A-Za-z0-9_.-]{1,32}$")


class PreConfig(_Model):
    """An ONU already configured on the OLT when the lab starts (pre-provisioning)."""

    onu_id: int = Field(ge=0, le=127)
    description: str = Field(default="", max_length=64, pattern=r"^[ -~]*$")
    services: list[ServiceSpec] = []


class OntSpec(_Model):
    serial: str
    port: str
    model: str = "SL-ONT4G"
    firmware: str = "V1.0.4"
    powered: bool = True
    fibre: bool = True
    present: bool = True  # plugged in at start
    configured: PreConfig | None = None
    gateway: GatewaySpec | None = None

    @field_validator("serial")
    @classmethod
    def _serial(cls, v: str) -> str:
        if not SERIAL_RE.fullmatch(v):
            raise ValueError(f"{v!r} is not an ONT serial (4-character vendor id + 8 hex "
                             "digits, e.g. ABCD0000A1B2)")
        return v[:4].upper() + v[4:].upper()

    @field_validator("port")
    @classmethod
    def _port(cls, v: str) -> str:
        if not PORT_RE.fullmatch(v):
            raise ValueError(f"{v!r} is not a PON port like 0/1/0")
        return v


class Generate(_Model):
    """ONTs (and gateways) generated per PON port, for large labs."""

    onts_per_port: int = Field(ge=1, le=128)
    vendor: str = Field(default="SIML", pattern=r"^[A-Z0-9]{4}$")
    model: str = "SL-ONT4G"
    present: bool = True
    gateway_models: list[str] = []  # rotated over the ONTs; empty = no gateways
    configured_services: list[ServiceSpec] = []  # pre-provision every generated ONT


class Uplink(_Model):
    port: str
    vlans: list[int | str] = Field(min_length=1)

    @field_validator("port")
    @classmethod
    def _port(cls, v: str) -> str:
        if not PORT_RE.fullmatch(v):
            raise ValueError(f"{v!r} is not an uplink port like 0/9/0")
        return v

    @field_validator("vlans")
    @classmethod
    def _vlans(cls, v: list[int | str]) -> list[int | str]:
        _vlan_set(v)
        return v

    def vlan_set(self) -> frozenset[int]:
        """The network VLANs this uplink carries (ranges expanded)."""
        return _vlan_set(self.vlans)


def _vlan_set(items: list[int | str]) -> frozenset[int]:
    out: set[int] = set()
    for item in items:
        if isinstance(item, int):
            if not 1 <= item <= 4094:
                raise ValueError(f"VLAN {item} is outside 1..4094")
            out.add(item)
            continue
        m = re.fullmatch(r"(\d{1,4})-(\d{1,4})", item.strip())
        if m is None:
            raise ValueError(f"{item!r} is neither a VLAN id nor a range like 1000-1099")
        lo, hi = int(m.group(1)), int(m.group(2))
        if not 1 <= lo <= hi <= 4094:
            raise ValueError(f"VLAN range {item!r} must lie within 1..4094, low to high")
        out.update(range(lo, hi + 1))
    return frozenset(out)


class OltSpec(_Model):
    name: str
    address: str | None = None
    model: str = "SL-OLT16"
    vendor: str = "SimuLight"
    firmware: str = "V3.2.1"
    protocols: list[Protocol] = ["netconf", "snmp", "ssh"]
    pon_ports: list[str] | int = 4  # names, or a count on slot 0/1
    uplinks: list[Uplink] = Field(min_length=1)
    # Traffic descriptor profiles the operator set up on the OLT: name -> maximum bit rate.
    traffic_profiles: dict[str, int] = {"tdp-100M": 100_000_000, "tdp-1G": 1_000_000_000}
    onts: list[OntSpec] = []
    generate: Generate | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.fullmatch(v):
            raise ValueError(f"{v!r} is not a device name (letter, then letters, digits, "
                             "'_', '.', '-'; at most 32)")
        return v

    def port_names(self) -> list[str]:
        if isinstance(self.pon_ports, int):
            return [f"0/1/{i}" for i in range(self.pon_ports)]
        return list(self.pon_ports)

    @model_validator(mode="after")
    def _check(self) -> OltSpec:
        if isinstance(self.pon_ports, int) and not 1 <= self.pon_ports <= 64:
            raise ValueError("pon_ports must be 1..64 (or a list of port names)")
        ports = self.port_names()
        for p in ports:
            if not PORT_RE.fullmatch(p):
                raise ValueError(f"PON port {p!r} is not like 0/1/0")
        if len(set(ports)) != len(ports):
            raise ValueError("PON port names repeat")
        for i, ont in enumerate(self.onts):
            if ont.port not in ports:
                raise ValueError(f"onts[{i}] ({ont.serial}) is on port {ont.port}, which this "
                                 f"OLT does not have (ports: {', '.join(ports)})")
        for name, rate in self.traffic_profiles.items():
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", name) or not 0 < rate <= 10**11:
                raise ValueError(f"traffic profile {name!r}: a name of 1-32 letters, digits, "
                                 "'_', '.', '-' and a rate of 1..100,000,000,000 bit/s")
        services = [s for o in self.onts if o.configured for s in o.configured.services]
        services += self.generate.configured_services if self.generate else []
        for svc in services:
            if svc.profile not in self.traffic_profiles:
                raise ValueError(f"a pre-configured service uses traffic profile "
                                 f"{svc.profile!r}, which traffic_profiles does not define "
                                 f"({', '.join(self.traffic_profiles)})")
        seen: set[str] = set()
        for u in self.uplinks:
            if u.port in seen or u.port in ports:
                raise ValueError(f"uplink port {u.port} repeats or is also a PON port")
            seen.add(u.port)
        return self


class Defaults(_Model):
    # A simulated box's factory login: lab data, not a secret.
    credentials: Credentials = Credentials(username="admin", password="admin")  # noqa: S106
    snmp: SnmpCredentials = SnmpCredentials()
    ports: Ports = Ports()
    ranging_delay: float = Field(default=0.02, ge=0, le=60)


class FaultSpec(_Model):
    device: str
    fault: str
    value: Any = True


class ControlSpec(_Model):
    address: str = "127.0.0.1"
    port: int = Field(default=8700, ge=0, le=65535)


class Topology(_Model):
    name: str = "lab"
    address_base: str = "127.1.0.0"  # devices get consecutive addresses after this one
    defaults: Defaults = Defaults()
    control: ControlSpec = ControlSpec()
    gateway_models: dict[str, GatewayModel] = {
        "SL-GW-N": GatewayModel(protocols=["netconf"]),
        "SL-GW-S": GatewayModel(protocols=["snmp"]),
        "SL-GW-C": GatewayModel(protocols=["ssh"]),
    }
    trap_targets: list[TrapTarget] = []
    olts: list[OltSpec] = Field(min_length=1)
    faults: list[FaultSpec] = []

    @field_validator("address_base")
    @classmethod
    def _base(cls, v: str) -> str:
        if not ipaddress.ip_address(v).is_loopback:
            raise ValueError(f"{v} is not in 127.0.0.0/8: simulated devices live on loopback")
        return v

    @model_validator(mode="after")
    def _check(self) -> Topology:
        names = [o.name for o in self.olts]
        if len(set(names)) != len(names):
            raise ValueError("OLT names repeat")
        serials: set[str] = set()
        for olt in self.olts:
            for ont in olt.onts:
                if ont.serial in serials:
                    raise ValueError(f"ONT serial {ont.serial} appears twice")
                serials.add(ont.serial)
                if ont.gateway is not None and ont.gateway.model not in self.gateway_models:
                    raise ValueError(f"ONT {ont.serial}: gateway model {ont.gateway.model!r} is "
                                     f"not in gateway_models ({', '.join(self.gateway_models)})")
            if olt.generate is not None:
                for m in olt.generate.gateway_models:
                    if m not in self.gateway_models:
                        raise ValueError(f"OLT {olt.name}: generate.gateway_models names "
                                         f"{m!r}, which is not in gateway_models")
        return self


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_topology(data: Any, source: str) -> Topology:
    """Validate already-loaded YAML data; errors name ``source``, each field and the reason."""
    if not isinstance(data, dict):
        raise TopologyError(f"{source}: the topology must be a mapping (got {type(data).__name__})")
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise TopologyError("\n".join(lines)) from None


def load_topology(path: Path) -> Topology:
    """Read and validate a topology file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path}: not valid YAML: {exc}") from None
    return parse_topology(data, str(path))
