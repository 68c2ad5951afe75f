"""Device profiles as data: one YAML file per kind of device under ``configs/profiles/``.

A profile says how the vendor-neutral intent (:mod:`agent.intent`) becomes what one kind of
device takes: NETCONF XML (BBF TR-383/TR-385 shaped), CLI lines, or SNMP varbinds. A new OLT
vendor is a new file; :func:`load_profile` reads it into a :class:`Profile` and refuses a bad
one with a message naming the file, the field and the reason.

A profile holds:

* ``protocol``: ``netconf``, ``snmp`` or ``ssh`` (a CLI over SSH; ``platform`` then names the
  CLI dialect under ``configs/platforms/``, e.g. ``huawei-olt``).
* ``variables``: derived values, each a Jinja2 *expression* over the intent's fields (and the
  variables before it), e.g. ``port_index: "port + 1"``.
* ``templates``: four renderings, ``ont`` (the ONU registration), ``service`` (one service),
  ``remove_service`` and ``remove_ont``. For ``netconf`` each is a Jinja2 template of XML
  (``<config>`` content; autoescaped), for ``ssh`` a template whose non-blank lines are the
  CLI lines, for ``snmp`` a list of ``{oid, type, value, when}`` varbind templates.

Templates run in Jinja2's immutable sandbox with ``StrictUndefined``: a misspelt variable is
an error, not an empty string. The variables every template sees are listed in
:mod:`agent.render`.

Bare profile names are looked up in ``$PONCTL_CONFIGS/profiles/`` when that variable is set,
else in the ``configs/profiles/`` directory found by walking up from this module (the source
checkout), else in ``./configs/profiles/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from drivers.datafiles import data_dirs, locate, read_yaml, validation_message
from drivers.snmp.varbind import VarType

Protocol = Literal["netconf", "snmp", "ssh"]
TemplateName = Literal["ont", "service", "remove_service", "remove_ont", "gateway",
                       "clear_gateway"]
TEMPLATE_NAMES: tuple[TemplateName, ...] = ("ont", "service", "remove_service", "remove_ont")
# A gateway profile writes the analytics (PHAN) URL and WAN VLAN, and clears them (RMA).
GATEWAY_TEMPLATE_NAMES: tuple[TemplateName, ...] = ("gateway", "clear_gateway")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Types a varbind template may set (the read-only and exception types make no sense here).
SETTABLE = frozenset({VarType.INTEGER, VarType.UNSIGNED, VarType.OCTET_STRING,
                      VarType.GAUGE32, VarType.IP_ADDRESS, VarType.TIMETICKS,
                      VarType.OBJECT_IDENTIFIER})


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file, field and reason."""


def environment(autoescape: bool) -> jinja2.Environment:
    """The Jinja2 environment profiles render in: sandboxed, strict, XML-escaping if asked."""
    return ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=jinja2.StrictUndefined,
                                         keep_trailing_newline=False, trim_blocks=True,
                                         lstrip_blocks=True)


_CHECK_ENV = environment(False)


def _syntax(text: str, expression: bool = False) -> str:
    try:
        if expression:
            _CHECK_ENV.compile_expression(text)
        else:
            _CHECK_ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        where = f" (line {exc.lineno})" if not expression else ""
        raise ValueError(f"invalid Jinja2 {'expression' if expression else 'template'}"
                         f"{where}: {exc.message}") from None
    return text


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VarbindTemplate(_Model):
    """One SNMP variable binding: OID (name or numeric, e.g. ``ponctlOntSerial.{{ ... }}``),
    type, and value, each rendered; ``when`` (an expression) leaves it out when false."""

    oid: str = Field(min_length=1, max_length=256)
    type: VarType
    value: str = Field(max_length=1024)
    when: str | None = None

    @field_validator("oid", "value")
    @classmethod
    def _template(cls, v: str) -> str:
        return _syntax(v)

    @field_validator("when")
    @classmethod
    def _expression(cls, v: str | None) -> str | None:
        return None if v is None else _syntax(v, expression=True)

    @field_validator("type")
    @classmethod
    def _settable(cls, v: VarType) -> VarType:
        if v not in SETTABLE:
            raise ValueError(f"{v.value} cannot be set; use one of "
                             f"{', '.join(sorted(t.value for t in SETTABLE))}")
        return v


Rendering = str | list[VarbindTemplate]


class Templates(_Model):
    """The renderings of a profile (see the module docstring): an OLT profile has the four
    ONT/service ones, a gateway profile ``gateway`` and ``clear_gateway``."""

    ont: Rendering | None = None
    service: Rendering | None = None
    remove_service: Rendering | None = None
    remove_ont: Rendering | None = None
    gateway: Rendering | None = None
    clear_gateway: Rendering | None = None

    @field_validator("ont", "service", "remove_service", "remove_ont", "gateway",
                     "clear_gateway")
    @classmethod
    def _template(cls, v: Rendering | None) -> Rendering | None:
        return _syntax(v) if isinstance(v, str) else v


def _article(kind: str) -> str:
    return "an OLT" if kind == "olt" else "a gateway"


class Profile(_Model):
    """One kind of device: how intents render into its payloads."""

    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    kind: Literal["olt", "gateway"] = "olt"
    protocol: Protocol
    platform: str | None = Field(default=None, min_length=1, max_length=64)  # ssh: CLI dialect
    variables: dict[str, str] = {}
    templates: Templates
    _source: str = PrivateAttr(default="")
    _env: jinja2.Environment | None = PrivateAttr(default=None)
    # Compiled once per profile: compiling is most of a render's cost (tens of templates and
    # expressions per ONT), and a profile's texts never change.
    _templates: dict[str, jinja2.Template] = PrivateAttr(default_factory=dict)
    _expressions: dict[str, Callable[..., Any]] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """The file this profile was loaded from ('' when built in code)."""
        return self._source

    @property
    def env(self) -> jinja2.Environment:
        """The environment this profile's templates render in (XML-escaping for netconf)."""
        if self._env is None:
            self._env = environment(autoescape=self.protocol == "netconf")
        return self._env

    def template(self, text: str) -> jinja2.Template:
        """``text`` compiled in :attr:`env` (cached)."""
        t = self._templates.get(text)
        if t is None:
            t = self._templates[text] = self.env.from_string(text)
        return t

    def expression(self, text: str) -> Callable[..., Any]:
        """The expression ``text`` compiled in :attr:`env` (cached; undefined names fail)."""
        e = self._expressions.get(text)
        if e is None:
            e = self._expressions[text] = self.env.compile_expression(
                text, undefined_to_none=False)
        return e

    @field_validator("variables")
    @classmethod
    def _variables(cls, v: dict[str, str]) -> dict[str, str]:
        for name, expr in v.items():
            if not _IDENT.fullmatch(name):
                raise ValueError(f"variable name {name!r} is not an identifier")
            try:
                _syntax(expr, expression=True)
            except ValueError as exc:
                raise ValueError(f"variable {name!r}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.protocol == "ssh" and self.platform is None:
            raise ValueError("protocol ssh needs platform, the CLI dialect (e.g. huawei-olt)")
        if self.protocol != "ssh" and self.platform is not None:
            raise ValueError(f"platform is for protocol ssh only, not {self.protocol}")
        wanted = TEMPLATE_NAMES if self.kind == "olt" else GATEWAY_TEMPLATE_NAMES
        for name in TEMPLATE_NAMES + GATEWAY_TEMPLATE_NAMES:
            value = getattr(self.templates, name)
            if value is None:
                if name in wanted:
                    raise ValueError(f"templates.{name}: {_article(self.kind)} profile "
                                     "needs it")
                continue
            if name not in wanted:
                raise ValueError(f"templates.{name}: not used by {_article(self.kind)} "
                                 "profile")
            want_list = self.protocol == "snmp"
            if want_list != isinstance(value, list):
                raise ValueError(
                    f"templates.{name}: protocol {self.protocol} needs "
                    + ("a list of varbind templates {oid, type, value}" if want_list
                       else "a template string"))
        return self


# ---- loading --------------------------------------------------------------------------------
def parse_profile(data: Any, source: str) -> Profile:
    """Validate already-loaded YAML data; errors name ``source``, each field and the reason.

    ``name`` defaults to the file's stem when the file does not set it.
    """
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a profile must be a mapping (got {type(data).__name__})")
    if "name" not in data:
        data = {**data, "name": Path(source).stem}
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(validation_message(source, exc)) from None
    profile._source = source
    return profile


def profile_dirs() -> list[Path]:
    """Where bare profile names are looked up, in order."""
    return data_dirs("profiles")


def load_profile(name_or_path: str | Path) -> Profile:
    """Read a profile by bare name (``"sim-olt-netconf"``) or from a file path."""
    path = locate(name_or_path, "profiles", "profile", ProfileError)
    return parse_profile(read_yaml(path, ProfileError), str(path))
