"""The agent's settings file (``configs/agent.yaml``): devices, credentials, store, PHAN, API.

Secrets are never written in the file: a credential is a reference, ``{env: VAR}`` or
``{file: PATH}``, resolved when the agent starts; a literal secret is refused with an error
that says how to move it out. Errors name the file, the field and the reason.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.intent import NAME
from drivers.datafiles import field_path


class SettingsError(ValueError):
    """A settings file that cannot be used; the message names file, field and reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """Where a secret lives: an environment variable or a file (first line, stripped)."""

    env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]{0,63}$")
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def resolve(self, environ: dict[str, str] | None = None) -> str:
        """The secret's value; raises SettingsError naming the variable or file (not the value)."""
        if self.env is not None:
            value = (environ if environ is not None else os.environ).get(self.env)
            if not value:
                raise SettingsError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            value = self.file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise SettingsError(f"cannot read a secret from {self.file}: "
                                f"{getattr(exc, 'strerror', None) or 'empty file'}") from None
        if not value:
            raise SettingsError(f"secret file {self.file} is empty")
        return value

    def __repr__(self) -> str:
        return f"SecretRef(env={self.env!r})" if self.env else f"SecretRef(file={self.file!r})"


def _secret(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(  # noqa: TRY004 - pydantic reports ValueError as a field error
            "secrets are not written in the settings file: use {env: VARIABLE} "
            "or {file: /path/to/secret}")
    return value


Secret = Annotated[SecretRef, Field(description="{env: VAR} or {file: PATH}")]


class SshCredentials(_Model):
    username: str = Field(min_length=1, max_length=32)
    password: Secret | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None  # default: ~/.ssh/known_hosts
    insecure_no_host_key_check: bool = False  # lab only; logged on every connection

    _p = field_validator("password", mode="before")(_secret)

    @model_validator(mode="after")
    def _auth(self) -> SshCredentials:
        if self.password is None and self.key_file is None:
            raise ValueError("give a password reference or a key_file")
        return self


class SnmpCredentials(_Model):
    version: Literal["v2c", "v3"] = "v3"
    community: Secret | None = None
    user: str | None = None
    auth_key: Secret | None = None
    priv_key: Secret | None = None
    auth_protocol: Literal["SHA", "SHA224", "SHA256", "SHA384", "SHA512"] = "SHA"
    priv_protocol: Literal["AES", "AES192", "AES256"] = "AES"

    _s = field_validator("community", "auth_key", "priv_key", mode="before")(_secret)

    @model_validator(mode="after")
    def _complete(self) -> SnmpCredentials:
        if self.version == "v2c" and self.community is None:
            raise ValueError("SNMP v2c needs a community reference")
        if self.version == "v3" and None in (self.user, self.auth_key, self.priv_key):
            raise ValueError("SNMP v3 needs user, auth_key and priv_key (authPriv)")
        return self


class Device(_Model):
    """An OLT or gateway the agent manages."""

    name: str = Field(pattern=f"^{NAME.pattern}$")
    kind: Literal["olt", "gateway"] = "olt"
    address: str
    protocol: Literal["netconf", "snmp", "ssh"]
    port: int = Field(ge=1, le=65535)
    profile: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    ssh: SshCredentials | None = None
    snmp: SnmpCredentials | None = None
    timeout: float = Field(default=10.0, gt=0, le=300)
    concurrency: int = Field(default=4, ge=1, le=64)

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            if not all(part.isalnum() or "-" in part for part in v.split(".")) or len(v) > 253:
                raise ValueError(f"{v!r} is neither an IP address nor a host name") from None
        return v

    @model_validator(mode="after")
    def _credentials(self) -> Device:
        if self.protocol in ("netconf", "ssh") and self.ssh is None:
            raise ValueError(f"a {self.protocol} device needs 'ssh' credentials")
        if self.protocol == "snmp" and self.snmp is None:
            raise ValueError("an snmp device needs 'snmp' credentials")
        return self


class GatewayClass(_Model):
    """How the agent reaches one kind of residential gateway: its management protocol, port,
    profile and credentials (gateways themselves are inventory: name, address, class)."""

    name: str = Field(pattern=f"^{NAME.pattern}$")
    protocol: Literal["netconf", "snmp", "ssh"]
    port: int = Field(ge=1, le=65535)
    profile: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    ssh: SshCredentials | None = None
    snmp: SnmpCredentials | None = None
    timeout: float = Field(default=10.0, gt=0, le=300)
    wan_vlan: int = Field(default=0, ge=0, le=4094)  # 0: untagged WAN (the ONT tags)

    @model_validator(mode="after")
    def _credentials(self) -> GatewayClass:
        if self.protocol in ("netconf", "ssh") and self.ssh is None:
            raise ValueError(f"a {self.protocol} gateway class needs 'ssh' credentials")
        if self.protocol == "snmp" and self.snmp is None:
            raise ValueError("an snmp gateway class needs 'snmp' credentials")
        return self

    def device(self, name: str, address: str, port: int | None = None) -> Device:
        """One gateway of this class as a :class:`Device` (for the driver factory)."""
        return Device(name=name, kind="gateway", address=address, protocol=self.protocol,
                      port=self.port if port is None else port, profile=self.profile,
                      ssh=self.ssh, snmp=self.snmp, timeout=self.timeout)


class Token(_Model):
    name: str = Field(pattern=f"^{NAME.pattern}$")
    role: Literal["admin", "csr"]
    token: Secret

    _t = field_validator("token", mode="before")(_secret)


class Api(_Model):
    listen: str = "127.0.0.1"
    port: int = Field(default=8600, ge=0, le=65535)
    tokens: list[Token] = []


class TrapUser(_Model):
    """An SNMPv3 user whose notifications the trap listener accepts.

    ``engine_id``: the sender's snmpEngineID in hex, for its v3 traps (a v3 trap is
    authenticated under the sender's engine ID); none for INFORMs. The agent's own SNMPv3
    OLTs need no entry here: their user is accepted under the engine ID learned when the
    agent connects to them.
    """

    user: str = Field(min_length=1, max_length=32)
    auth_key: Secret
    priv_key: Secret | None = None  # none: authNoPriv
    auth_protocol: Literal["SHA", "SHA224", "SHA256", "SHA384", "SHA512"] = "SHA"
    priv_protocol: Literal["AES", "AES192", "AES256"] = "AES"
    engine_id: str | None = Field(default=None, pattern=r"^(0x)?([0-9A-Fa-f]{2}){5,32}$")

    _s = field_validator("auth_key", "priv_key", mode="before")(_secret)

    def engine_id_bytes(self) -> bytes | None:
        if self.engine_id is None:
            return None
        return bytes.fromhex(self.engine_id.removeprefix("0x"))


class Traps(_Model):
    """The SNMP trap listener: where the OLTs send their ONT notifications (configure the
    same address and port as their trap target), and which v2c communities and v3 users it
    accepts. Traps are matched to the configured SNMP OLT by their source address; traps from
    anywhere else are logged and ignored."""

    listen: str = "127.0.0.1"
    port: int = Field(default=162, ge=0, le=65535)  # 0: any free port (tests)
    communities: list[Secret] = []
    users: list[TrapUser] = []

    @field_validator("communities", mode="before")
    @classmethod
    def _communities(cls, v: Any) -> Any:
        if isinstance(v, list):
            for item in v:
                _secret(item)
        return v

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address") from None
        return v


class Phan(_Model):
    base_url: str = Field(pattern=r"^https?://[^\s?#]+$")
    keys_file: Path | None = None  # default: $PONCTL_PHAN_KEYS


# GPON optical classes (ITU-T G.984.2): the Rx power range, in dBm, an ONT must receive.
GPON_CLASSES: dict[str, tuple[float, float]] = {"B+": (-28.0, -8.0), "C+": (-32.0, -12.0)}


class OpticalClass(_Model):
    """An optical budget class: the ONT's Rx power must lie in ``[min_dbm, max_dbm]``."""

    min_dbm: float = Field(ge=-60, le=10)
    max_dbm: float = Field(ge=-60, le=10)

    @model_validator(mode="after")
    def _range(self) -> OpticalClass:
        if self.min_dbm >= self.max_dbm:
            raise ValueError("min_dbm must be below max_dbm")
        return self


class Diagnose(_Model):
    """``ponctl diagnose``: optical classes, time bounds, and (in the lab only) the simulated
    lab's control endpoint for the data-path trace."""

    lab_control: str | None = Field(default=None, pattern=r"^https?://[^\s?#]+$")
    optical_class: str = "B+"  # the default class of every OLT
    olt_optical_class: dict[str, str] = {}  # OLT name -> class
    ont_optical_class: dict[str, str] = {}  # ONT serial -> class (wins over the OLT's)
    optical_classes: dict[str, OpticalClass] = {}  # added to (or replacing) GPON_CLASSES
    margin_warning_db: float = Field(default=3.0, ge=0, le=20)  # less margin: a warning
    check_timeout: float = Field(default=10.0, gt=0, le=60)  # seconds for one check
    report_timeout: float = Field(default=30.0, gt=0, le=100)  # seconds for one section

    def classes(self) -> dict[str, OpticalClass]:
        builtin = {n: OpticalClass(min_dbm=lo, max_dbm=hi)
                   for n, (lo, hi) in GPON_CLASSES.items()}
        return {**builtin, **self.optical_classes}

    @model_validator(mode="after")
    def _known_classes(self) -> Diagnose:
        known = self.classes()
        for name in [self.optical_class, *self.olt_optical_class.values(),
                     *self.ont_optical_class.values()]:
            if name not in known:
                raise ValueError(f"optical class {name!r} is not defined (known: "
                                 f"{', '.join(sorted(known))})")
        return self


class Settings(_Model):
    store: Path = Path("ponctl.sqlite3")
    catalog: Path = Path("configs/catalog.yaml")
    devices: list[Device] = Field(min_length=1)
    gateway_classes: list[GatewayClass] = []
    phan: Phan | None = None
    api: Api = Api()
    traps: Traps | None = None  # none: SNMP OLTs are not watched for ONT discovery
    audit_interval: float = Field(default=300.0, ge=0)  # 0 = no periodic audit
    heal_mismatches: bool = False  # re-apply by itself what the audit finds changed
    max_concurrent_pushes: int = Field(default=32, ge=1, le=1024)
    diagnose: Diagnose = Diagnose()  # ponctl diagnose (agent/diagnose.py)

    @model_validator(mode="after")
    def _unique(self) -> Settings:
        names = [d.name for d in self.devices]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"device names repeat: {', '.join(dup)}")
        classes = [c.name for c in self.gateway_classes]
        dup = sorted({n for n in classes if classes.count(n) > 1})
        if dup:
            raise ValueError(f"gateway class names repeat: {', '.join(dup)}")
        return self

    def gateway_class(self, name: str) -> GatewayClass:
        for c in self.gateway_classes:
            if c.name == name:
                return c
        raise KeyError(f"no gateway class named {name!r} in the settings")

    def device(self, name: str) -> Device:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(f"no device named {name!r} in the settings")



def parse_settings(data: Any, source: str) -> Settings:
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: the settings must be a mapping")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        # Never echo the input: it may be a secret someone wrote in by mistake.
        raise SettingsError("\n".join(f"{source}: {field_path(e['loc'])}: {e['msg']}"
                                      for e in exc.errors())) from None


def load_settings(path: Path) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from None
    return parse_settings(data, str(path))
