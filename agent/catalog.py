"""The service catalog: what an ISP + service type means on the network.

``configs/catalog.yaml`` holds ISPs, service types (default UNI, untagged or tagged on the ONT
side), per ISP and service type the C-VLAN (towards the ONT), S-VLAN (on the uplink) and
bandwidth profile, the bandwidth profiles themselves, and per OLT the network services (S-VLANs)
each uplink carries.

Two kinds of problem, deliberately kept apart:

* **Load errors** (:class:`CatalogError`, raised by :func:`load_catalog` / :func:`parse_catalog`):
  the file itself is malformed, so no order could trust any of it — unreadable file, bad YAML,
  duplicate mapping keys, top level not a mapping, unknown or missing keys, wrong types (VLANs
  must be integers; ``"ten"`` is not one), VLANs outside 1..4094, bad VLAN ranges, invalid names
  or ports, impossible bandwidth rates, duplicate ISP codes, a tagged service type without its
  user VLAN, one S-VLAN on two uplinks of the same OLT (ambiguous). Each message names the file,
  the field and the reason, one line per problem.
* **Gaps** (:class:`Missing`, returned by :meth:`Catalog.resolve`): the file is well formed but
  a *reference* leads nowhere — an ISP or service type an order names is not in the catalog, an
  ISP has no VLAN for a service type, an ISP service names an undefined bandwidth profile, an OLT
  has no network services or no uplink carrying the S-VLAN. A catalog is edited piecemeal, so a
  gap only affects the orders that need it; they report it as the "configuration missing"
  prerequisite, naming exactly what is missing. :meth:`Catalog.check` lists the dangling
  references of the whole file up front (for ``ponctl catalog check``), without failing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.intent import NAME, PON_PORT, BandwidthProfile, IntentError
from drivers.datafiles import field_path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "configs" / "catalog.yaml"

VlanId = Annotated[int, Field(strict=True, ge=1, le=4094)]
Name = Annotated[str, Field(strict=True, pattern=rf"^{NAME.pattern}$")]
VlanItem = StrictInt | StrictStr
Rate = Annotated[int, Field(strict=True, ge=0, le=100_000_000_000)]

MissingKind = Literal[
    "isp-unknown",
    "service-type-unknown",
    "isp-vlan-missing",
    "bandwidth-profile-unknown",
    "olt-unknown",
    "network-service-missing",
]


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names file, field and reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceTypeSpec(_Model):
    """A kind of service: which UNI it lands on by default and how frames look on that UNI."""

    uni: int = Field(default=1, strict=True, ge=1, le=4)
    tagging: Literal["untagged", "tagged"] = "untagged"
    user_vlan: VlanId | None = None  # the VLAN the subscriber's device tags with, when tagged

    @model_validator(mode="after")
    def _user_vlan(self) -> ServiceTypeSpec:
        if self.tagging == "tagged" and self.user_vlan is None:
            raise ValueError("tagging 'tagged' needs user_vlan (the VLAN on the ONT side)")
        if self.tagging == "untagged" and self.user_vlan is not None:
            raise ValueError("user_vlan is only allowed with tagging 'tagged'")
        return self


class IspService(_Model):
    """What one ISP's service of one type is on the network."""

    c_vlan: VlanId
    s_vlan: VlanId
    bandwidth_profile: Name


class IspSpec(_Model):
    code: Name
    name: str = Field(strict=True, min_length=1, max_length=64)
    services: dict[Name, IspService] = {}


class BandwidthProfileSpec(_Model):
    max_bps: Rate
    assured_bps: Rate = 0
    fixed_bps: Rate = 0

    @model_validator(mode="after")
    def _rates(self) -> BandwidthProfileSpec:
        if not 0 <= self.fixed_bps <= self.assured_bps <= self.max_bps or self.max_bps == 0:
            raise ValueError("rates need 0 <= fixed_bps <= assured_bps <= max_bps, max_bps > 0")
        return self


class OltSpec(_Model):
    """The network services of one OLT: uplink port -> S-VLANs (ids or ranges "1000-1009")."""

    uplinks: dict[str, list[VlanItem]] = Field(min_length=1)

    @field_validator("uplinks")
    @classmethod
    def _uplinks(cls, v: dict[str, list[VlanItem]]) -> dict[str, list[VlanItem]]:
        owner: dict[int, str] = {}
        for port, items in v.items():
            if not PON_PORT.fullmatch(port):
                raise ValueError(f"{port!r} is not an uplink port like 0/9/0")
            if not items:
                raise ValueError(f"uplink {port} carries no VLANs")
            for vlan in sorted(expand_vlans(items, where=f"uplink {port}")):
                if vlan in owner:
                    raise ValueError(f"S-VLAN {vlan} is on both uplink {owner[vlan]} and "
                                     f"uplink {port}: a network service needs one uplink")
                owner[vlan] = port
        return v


class CatalogSpec(_Model):
    isps: list[IspSpec] = []
    service_types: dict[Name, ServiceTypeSpec] = {}
    bandwidth_profiles: dict[Name, BandwidthProfileSpec] = {}
    olts: dict[Name, OltSpec] = {}

    @model_validator(mode="after")
    def _unique_isps(self) -> CatalogSpec:
        seen: set[str] = set()
        for isp in self.isps:
            if isp.code in seen:
                raise ValueError(f"ISP code {isp.code!r} appears twice in isps")
            seen.add(isp.code)
        return self


def expand_vlans(items: Iterable[int | str], where: str = "VLAN list") -> frozenset[int]:
    """Expand ``[1000-1009, 2000]`` into the set of VLAN ids; ValueError names the bad item."""
    out: set[int] = set()
    for item in items:
        if isinstance(item, int):
            if not 1 <= item <= 4094:
                raise ValueError(f"{where}: VLAN {item} is outside 1..4094")
            out.add(item)
            continue
        m = re.fullmatch(r"(\d{1,4})-(\d{1,4})", item.strip())
        if m is None:
            raise ValueError(f"{where}: {item!r} is neither a VLAN id nor a range like 1000-1009")
        lo, hi = int(m.group(1)), int(m.group(2))
        if not 1 <= lo <= hi <= 4094:
            raise ValueError(f"{where}: VLAN range {item!r} must lie within 1..4094, low to high")
        out.update(range(lo, hi + 1))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Missing:
    """One gap in the catalog or the network, as an operator can act on it."""

    kind: MissingKind
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Resolved:
    """Everything the catalog says about one ISP service type on one OLT."""

    isp: str
    service_type: str
    olt: str
    c_vlan: int
    s_vlan: int
    uplink: str  # the uplink port carrying the S-VLAN (the network service)
    uni: int  # the service type's default UNI
    tagged: bool  # False: untagged on the UNI; True: tagged with user_vlan
    user_vlan: int | None
    profile: BandwidthProfile


class Catalog:
    """A validated catalog; lookups never raise for gaps, they report them."""

    def __init__(self, spec: CatalogSpec, source: str = "<catalog>") -> None:
        self.spec = spec
        self.source = source
        self._isps = {isp.code: isp for isp in spec.isps}
        self._profiles = {
            name: BandwidthProfile(name, p.max_bps, p.assured_bps, p.fixed_bps)
            for name, p in spec.bandwidth_profiles.items()
        }
        self._network: dict[str, dict[str, frozenset[int]]] = {
            olt: {port: expand_vlans(items) for port, items in o.uplinks.items()}
            for olt, o in spec.olts.items()
        }

    @property
    def isps(self) -> tuple[str, ...]:
        return tuple(self._isps)

    @property
    def service_types(self) -> tuple[str, ...]:
        return tuple(self.spec.service_types)

    @property
    def bandwidth_profiles(self) -> dict[str, BandwidthProfile]:
        return dict(self._profiles)

    def network_services(self, olt: str) -> dict[str, frozenset[int]]:
        """Uplink port -> S-VLANs it carries, for one OLT (empty if the OLT is not listed)."""
        return dict(self._network.get(olt, {}))

    def uplink_for(self, olt: str, s_vlan: int) -> str | None:
        for port, vlans in self._network.get(olt, {}).items():
            if s_vlan in vlans:
                return port
        return None

    def gaps(self, isp: str, service_type: str, olt: str | None = None) -> list[Missing]:
        """Everything missing for this ISP service type (and, if given, on this OLT).

        Pass ``olt=None`` while the ONT's OLT is not known yet: the network check is skipped.
        """
        out: list[Missing] = []
        isp_spec = self._isps.get(isp)
        if isp_spec is None:
            out.append(Missing("isp-unknown", f"ISP {isp!r} is not in the catalog"))
        known_type = service_type in self.spec.service_types
        if not known_type:
            known = ", ".join(sorted(self.spec.service_types)) or "none"
            out.append(Missing("service-type-unknown",
                               f"service type {service_type!r} is not in the catalog "
                               f"(known: {known})"))
        svc: IspService | None = None
        if isp_spec is not None and known_type:
            svc = isp_spec.services.get(service_type)
            if svc is None:
                out.append(Missing("isp-vlan-missing",
                                   f"ISP {isp!r} has no VLAN for service type {service_type!r}"))
            elif svc.bandwidth_profile not in self._profiles:
                out.append(Missing("bandwidth-profile-unknown",
                                   f"bandwidth profile {svc.bandwidth_profile!r} of ISP {isp!r} "
                                   f"service {service_type!r} is not defined"))
        if olt is not None:
            if olt not in self._network:
                out.append(Missing("olt-unknown",
                                   f"OLT {olt!r} is not in the catalog "
                                   f"(no network services configured for it)"))
            elif svc is not None and self.uplink_for(olt, svc.s_vlan) is None:
                out.append(Missing("network-service-missing",
                                   f"OLT {olt!r} has no uplink carrying S-VLAN {svc.s_vlan} "
                                   f"(network service missing)"))
        return out

    def resolve(self, isp: str, service_type: str, olt: str) -> Resolved | list[Missing]:
        """The VLANs, uplink, UNI and profile for this order, or exactly what is missing."""
        missing = self.gaps(isp, service_type, olt)
        if missing:
            return missing
        svc = self._isps[isp].services[service_type]
        st = self.spec.service_types[service_type]
        uplink = self.uplink_for(olt, svc.s_vlan)
        assert uplink is not None  # gaps() checked it
        return Resolved(isp=isp, service_type=service_type, olt=olt, c_vlan=svc.c_vlan,
                        s_vlan=svc.s_vlan, uplink=uplink, uni=st.uni,
                        tagged=st.tagging == "tagged", user_vlan=st.user_vlan,
                        profile=self._profiles[svc.bandwidth_profile])

    def check(self) -> list[Missing]:
        """Dangling references anywhere in the file (services of unknown types or profiles)."""
        out: list[Missing] = []
        for isp in self.spec.isps:
            for st, svc in isp.services.items():
                if st not in self.spec.service_types:
                    known = ", ".join(sorted(self.spec.service_types)) or "none"
                    out.append(Missing("service-type-unknown",
                                       f"ISP {isp.code!r} has VLANs for service type {st!r}, "
                                       f"which is not in the catalog (known: {known})"))
                if svc.bandwidth_profile not in self._profiles:
                    out.append(Missing("bandwidth-profile-unknown",
                                       f"bandwidth profile {svc.bandwidth_profile!r} of ISP "
                                       f"{isp.code!r} service {st!r} is not defined"))
        return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: construct_mapping reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)



def parse_catalog(data: Any, source: str) -> Catalog:
    """Validate already-loaded YAML data; errors name ``source``, each field and the reason."""
    if not isinstance(data, dict):
        raise CatalogError(f"{source}: the catalog must be a mapping (got {type(data).__name__})")
    try:
        spec = CatalogSpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {field_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CatalogError("\n".join(lines)) from None
    try:
        return Catalog(spec, source)
    except IntentError as exc:  # bandwidth rates that BandwidthProfile refuses
        raise CatalogError(f"{source}: bandwidth_profiles: {exc}") from None


def load_catalog(path: Path = DEFAULT_PATH) -> Catalog:
    """Read and validate a catalog file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    return parse_catalog(data, str(path))
