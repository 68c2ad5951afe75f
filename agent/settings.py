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


class Token(_Model):
    name: str = Field(pattern=f"^{NAME.pattern}$")
    role: Literal["admin", "csr"]
    token: Secret

    _t = field_validator("token", mode="before")(_secret)


class Api(_Model):
    listen: str = "127.0.0.1"
    port: int = Field(default=8600, ge=0, le=65535)
    tokens: list[Token] = []


class Phan(_Model):
    base_url: str = Field(pattern=r"^https?://[^\s?#]+$")
    keys_file: Path | None = None  # default: $PONCTL_PHAN_KEYS


class Settings(_Model):
    store: Path = Path("ponctl.sqlite3")
    catalog: Path = Path("configs/catalog.yaml")
    devices: list[Device] = Field(min_length=1)
    phan: Phan | None = None
    api: Api = Api()
    audit_interval: float = Field(default=300.0, ge=0)  # 0 = no periodic audit
    heal_mismatches: bool = False  # re-apply by itself what the audit finds changed
    max_concurrent_pushes: int = Field(default=32, ge=1, le=1024)

    @model_validator(mode="after")
    def _unique(self) -> Settings:
        names = [d.name for d in self.devices]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"device names repeat: {', '.join(dup)}")
        return self

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
