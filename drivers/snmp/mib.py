"""MIB names to numeric OIDs and back, from the project's MIB files read at run time.

``resolver.resolve("PONCTL-MIB::ponctlOntSerial.1.5")`` (or ``"ponctlOntSerial.1.5"``, or
``"1.3.6.1.4.1.32473.1.1.2.1.2.1.5"``) gives ``"1.3.6.1.4.1.32473.1.1.2.1.2.1.5"``;
``resolver.name_of(...)`` goes the other way.

The parser is deliberately small: it reads the value assignments of an SMIv2 module
(``name OBJECT-TYPE ... ::= { parent n }``, ``name OBJECT IDENTIFIER ::= { parent n }``,
``MODULE-IDENTITY``, ``NOTIFICATION-TYPE``, groups and compliances) plus, for objects, the
first word of SYNTAX, MAX-ACCESS and INDEX, which is what the driver needs (RowStatus
columns, writable columns of a row). It checks nothing else. pysmi would compile full MIBs,
but it is another dependency, needs every imported module (SNMPv2-SMI, -TC, -CONF) as source
files, which Debian's net-snmp does not ship, and would produce pysnmp MIB modules the
driver does not use; the few standard names the driver needs are built in below.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from drivers.snmp.varbind import in_subtree, is_numeric_oid, normalize_oid

log = logging.getLogger(__name__)

#: Where ``default_resolver`` looks for MIB files: ``PONCTL_MIB_DIRS`` (os.pathsep-separated),
#: else the project's ``configs/mibs`` next to this package.
MIB_DIRS_ENV = "PONCTL_MIB_DIRS"
PROJECT_MIB_DIR = Path(__file__).resolve().parents[2] / "configs" / "mibs"

_MACROS = frozenset({"OBJECT-TYPE", "MODULE-IDENTITY", "NOTIFICATION-TYPE", "OBJECT-IDENTITY",
                     "OBJECT-GROUP", "NOTIFICATION-GROUP", "MODULE-COMPLIANCE",
                     "AGENT-CAPABILITIES"})
_TOKEN = re.compile(
    r'"[^"]*"'  # a string (may span lines): skipped
    r"|--[^\n]*?(?:--|(?=\n)|\Z)"  # a comment, to the next -- or the end of the line: skipped
    r"|::=|\.\.|[{}(),;|\[\]]"
    r"|[A-Za-z][A-Za-z0-9-]*"
    r"|-?\d+"
    r"|\S")
_NAME = re.compile(r"^(?:(?P<module>[A-Za-z][\w-]*)::)?(?P<name>[A-Za-z][\w-]*)"
                   r"(?P<suffix>(?:\.\d+)*)$")


# Resolvable by name, but never used to name other OIDs.
_TOO_GENERAL = frozenset({"1", "1.3", "1.3.6", "1.3.6.1", "0.0"})


class UnknownObjectError(ValueError):
    """A MIB name that no loaded module defines (a caller's mistake, not the device's)."""


@dataclass(frozen=True, slots=True)
class MibNode:
    """One named node of the OID tree."""

    name: str
    module: str
    oid: str
    kind: str  # "OBJECT-TYPE", "OBJECT IDENTIFIER", "NOTIFICATION-TYPE", ...
    syntax: str | None = None  # first word(s) of SYNTAX: "RowStatus", "SEQUENCE OF", ...
    access: str | None = None  # MAX-ACCESS: "read-create", "read-only", "not-accessible"
    index: tuple[str, ...] = ()  # INDEX of a table entry

    @property
    def writable(self) -> bool:
        """MAX-ACCESS read-write or read-create: a SET may change it."""
        return self.access in ("read-write", "read-create")


@dataclass(frozen=True, slots=True)
class _Definition:
    name: str
    kind: str
    parent: str | None
    arcs: tuple[int, ...]
    syntax: str | None
    access: str | None
    index: tuple[str, ...]


def _tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text) if not t.startswith(('"', "--"))]


def parse_module(text: str) -> tuple[str, list[_Definition]]:
    """The module name and the OID value assignments of one SMI module's text."""
    toks = _tokens(text)
    try:
        module = toks[toks.index("DEFINITIONS") - 1]
    except ValueError:
        raise ValueError("no 'NAME DEFINITIONS ::= BEGIN' header: not an SMI module") from None
    if "IMPORTS" in toks:  # the import list names macros; skip it
        start = toks.index("IMPORTS")
        end = toks.index(";", start)
        toks = toks[:start] + toks[end + 1:]
    defs: list[_Definition] = []
    i = 0
    while i < len(toks) - 2:
        name, nxt = toks[i], toks[i + 1]
        if not name[0].islower() or not (nxt in _MACROS or toks[i + 1:i + 4] == [
                "OBJECT", "IDENTIFIER", "::="]):
            i += 1
            continue
        kind = nxt if nxt in _MACROS else "OBJECT IDENTIFIER"
        syntax = access = None
        index: list[str] = []
        j = i + (2 if nxt in _MACROS else 3)
        while j < len(toks) and toks[j] != "::=":
            t = toks[j]
            if t == "SYNTAX" and syntax is None and j + 1 < len(toks):
                syntax = toks[j + 1]
                if syntax in ("SEQUENCE", "OBJECT") and j + 2 < len(toks):
                    syntax = f"{syntax} {toks[j + 2]}"
            elif t in ("MAX-ACCESS", "ACCESS") and access is None and j + 1 < len(toks):
                access = toks[j + 1]
            elif t == "INDEX" and j + 1 < len(toks) and toks[j + 1] == "{":
                k = j + 2
                while k < len(toks) and toks[k] != "}":
                    if toks[k] not in (",", "IMPLIED"):
                        index.append(toks[k])
                    k += 1
                j = k
            j += 1
        value = _braced_oid(toks, j + 1)
        if value is not None:
            parent, arcs, j = value
            defs.append(_Definition(name, kind, parent, arcs, syntax, access, tuple(index)))
        i = max(j, i + 1)
    return module, defs


def _braced_oid(toks: list[str], i: int) -> tuple[str | None, tuple[int, ...], int] | None:
    """``{ parent 1 }``, ``{ iso 3 6 1 }`` or ``{ iso org(3) 6 }`` starting at ``toks[i]``."""
    if i >= len(toks) or toks[i] != "{":
        return None
    parent: str | None = None
    arcs: list[int] = []
    j = i + 1
    while j < len(toks) and toks[j] != "}":
        t = toks[j]
        if t.isdigit():
            arcs.append(int(t))
        elif t[0].isalpha():
            if j + 3 < len(toks) and toks[j + 1] == "(" and toks[j + 2].isdigit():
                arcs.append(int(toks[j + 2]))
                j += 3
            elif parent is None and not arcs:
                parent = t
            else:
                return None
        j += 1
    if j >= len(toks):
        return None
    return parent, tuple(arcs), j


# ---- built-in names: the standard objects the driver and its users reach for ------------------
def _builtin() -> Iterator[MibNode]:
    def nodes(module: str, base: str, names: dict[str, str], kind: str = "OBJECT-TYPE",
              **extra: str) -> Iterator[MibNode]:
        for name, arc in names.items():
            oid = f"{base}.{arc}" if base else arc
            yield MibNode(name, module, oid, kind, extra.get(name))

    yield from nodes("SNMPv2-SMI", "", {
        "iso": "1", "org": "1.3", "dod": "1.3.6", "internet": "1.3.6.1",
        "directory": "1.3.6.1.1", "mgmt": "1.3.6.1.2", "mib-2": "1.3.6.1.2.1",
        "transmission": "1.3.6.1.2.1.10", "experimental": "1.3.6.1.3", "private": "1.3.6.1.4",
        "enterprises": "1.3.6.1.4.1", "security": "1.3.6.1.5", "snmpV2": "1.3.6.1.6",
        "snmpDomains": "1.3.6.1.6.1", "snmpProxys": "1.3.6.1.6.2",
        "snmpModules": "1.3.6.1.6.3", "zeroDotZero": "0.0"}, "OBJECT IDENTIFIER")
    yield from nodes("SNMPv2-MIB", "1.3.6.1.2.1", {"system": "1", "snmp": "11"},
                     "OBJECT IDENTIFIER")
    yield from nodes("SNMPv2-MIB", "1.3.6.1.2.1.1", {
        "sysDescr": "1", "sysObjectID": "2", "sysUpTime": "3", "sysContact": "4",
        "sysName": "5", "sysLocation": "6", "sysServices": "7", "sysORLastChange": "8",
        "sysORTable": "9"})
    yield from nodes("SNMPv2-MIB", "1.3.6.1.6.3.1", {
        "snmpMIB": "", "snmpMIBObjects": "1", "snmpTrap": "1.4", "snmpTraps": "1.5"},
        "OBJECT IDENTIFIER")
    yield from nodes("SNMPv2-MIB", "1.3.6.1.6.3.1.1.4", {
        "snmpTrapOID": "1", "snmpTrapEnterprise": "3"})
    yield from nodes("SNMPv2-MIB", "1.3.6.1.6.3.1.1.5", {
        "coldStart": "1", "warmStart": "2", "linkDown": "3", "linkUp": "4",
        "authenticationFailure": "5"}, "NOTIFICATION-TYPE")
    yield from nodes("IF-MIB", "1.3.6.1.2.1", {"interfaces": "2", "ifMIB": "31"},
                     "OBJECT IDENTIFIER")
    yield from nodes("IF-MIB", "1.3.6.1.2.1.2", {"ifNumber": "1", "ifTable": "2",
                                                 "ifEntry": "2.1"})
    yield from nodes("IF-MIB", "1.3.6.1.2.1.2.2.1", {
        "ifIndex": "1", "ifDescr": "2", "ifType": "3", "ifMtu": "4", "ifSpeed": "5",
        "ifPhysAddress": "6", "ifAdminStatus": "7", "ifOperStatus": "8", "ifLastChange": "9",
        "ifInOctets": "10", "ifInUcastPkts": "11", "ifInDiscards": "13", "ifInErrors": "14",
        "ifOutOctets": "16", "ifOutUcastPkts": "17", "ifOutDiscards": "19",
        "ifOutErrors": "20"})
    yield from nodes("IF-MIB", "1.3.6.1.2.1.31.1", {"ifXTable": "1", "ifXEntry": "1.1"})
    yield from nodes("IF-MIB", "1.3.6.1.2.1.31.1.1.1", {
        "ifName": "1", "ifHCInOctets": "6", "ifHCOutOctets": "10", "ifHighSpeed": "15",
        "ifAlias": "18"})
    yield from nodes("SNMP-FRAMEWORK-MIB", "1.3.6.1.6.3.10.2.1", {
        "snmpEngineID": "1", "snmpEngineBoots": "2", "snmpEngineTime": "3",
        "snmpEngineMaxMessageSize": "4"})
    yield from nodes("SNMP-USER-BASED-SM-MIB", "1.3.6.1.6.3.15.1.1", {
        "usmStatsUnsupportedSecLevels": "1", "usmStatsNotInTimeWindows": "2",
        "usmStatsUnknownUserNames": "3", "usmStatsUnknownEngineIDs": "4",
        "usmStatsWrongDigests": "5", "usmStatsDecryptionErrors": "6"})


class MibResolver:
    """Names of the loaded modules (plus the built-in standard names) <-> numeric OIDs."""

    def __init__(self, nodes: Iterable[MibNode]) -> None:
        self._by_name: dict[str, list[MibNode]] = {}
        self._qualified: dict[tuple[str, str], MibNode] = {}
        self._by_oid: dict[str, MibNode] = {}
        for node in nodes:
            self._add(node)

    def _add(self, node: MibNode) -> None:
        if (node.module, node.name) in self._qualified:
            return
        self._qualified[(node.module, node.name)] = node
        self._by_name.setdefault(node.name, []).append(node)
        if node.oid in _TOO_GENERAL:
            return  # "iso.2.840.10045" reads worse than the number
        # Reverse lookups prefer objects and notifications over the module identity or a
        # plain OBJECT IDENTIFIER sharing the same number.
        known = self._by_oid.get(node.oid)
        if known is None or (known.kind not in ("OBJECT-TYPE", "NOTIFICATION-TYPE")
                             and node.kind in ("OBJECT-TYPE", "NOTIFICATION-TYPE")):
            self._by_oid[node.oid] = node

    @classmethod
    def builtin(cls) -> MibResolver:
        """Only the built-in SNMPv2-SMI / SNMPv2-MIB / IF-MIB / USM names."""
        return cls(_builtin())

    @classmethod
    def load(cls, *paths: Path) -> MibResolver:
        """Built-in names plus the modules in ``paths`` (files, or directories of ``*.txt``,
        ``*.mib`` and ``*.my`` files). A module whose parent names cannot be resolved
        raises ValueError naming the file and the name."""
        files: list[Path] = []
        for path in paths:
            if path.is_dir():
                files += sorted(p for p in path.iterdir()
                                if p.suffix.lower() in (".txt", ".mib", ".my"))
            else:
                files.append(path)
        resolver = cls.builtin()
        pending: list[tuple[Path, str, _Definition]] = []
        for file in files:
            module, defs = parse_module(file.read_text(encoding="utf-8", errors="replace"))
            pending += [(file, module, d) for d in defs]
        # Definitions may name parents defined later or in another file: resolve in passes.
        while pending:
            left: list[tuple[Path, str, _Definition]] = []
            for file, module, d in pending:
                base = resolver._parent(module, d.parent)
                if base is None:
                    left.append((file, module, d))
                    continue
                oid = ".".join(filter(None, [base, *map(str, d.arcs)]))
                resolver._add(MibNode(d.name, module, oid, d.kind, d.syntax, d.access,
                                      d.index))
            if len(left) == len(pending):
                file, _, d = left[0]
                raise ValueError(f"{file}: cannot resolve {d.name} under unknown {d.parent}")
            pending = left
        return resolver

    def _parent(self, module: str, parent: str | None) -> str | None:
        if parent is None:
            return ""
        node = self._qualified.get((module, parent))
        if node is None:
            found = self._by_name.get(parent)
            node = found[0] if found else None
        return node.oid if node else None

    # ---- lookups -----------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """A numeric OID (dotted, no leading dot) for a numeric OID or a MIB name with an
        optional module (``PONCTL-MIB::``) and instance suffix (``.1.5``)."""
        text = name.strip()
        if is_numeric_oid(text):
            return normalize_oid(text)
        m = _NAME.match(text)
        if m is None:
            raise UnknownObjectError(f"not an OID or MIB name: {name!r}")
        node = self.node(f"{m['module']}::{m['name']}" if m["module"] else m["name"])
        if node is None:
            raise UnknownObjectError(f"unknown MIB object {name!r}")
        return node.oid + m["suffix"]

    def node(self, name_or_oid: str) -> MibNode | None:
        """The node with exactly this name (optionally module-qualified) or OID."""
        text = name_or_oid.strip()
        if is_numeric_oid(text):
            return self._by_oid.get(normalize_oid(text))
        module, _, name = text.rpartition("::")
        if module:
            return self._qualified.get((module, name))
        found = self._by_name.get(name)
        if not found:
            return None
        if len(found) > 1:
            raise UnknownObjectError(f"{name} is defined in several modules "
                                     f"({', '.join(n.module for n in found)}): qualify it")
        return found[0]

    def object_of(self, oid: str) -> tuple[MibNode, str] | None:
        """The closest named node at or above ``oid``, and the rest (``"1.5"`` or ``""``)."""
        arcs = normalize_oid(oid).split(".")
        for n in range(len(arcs), 0, -1):
            node = self._by_oid.get(".".join(arcs[:n]))
            if node is not None:
                return node, ".".join(arcs[n:])
        return None

    def name_of(self, oid: str, *, qualified: bool = False) -> str:
        """``ponctlOntSerial.1.5`` (or ``PONCTL-MIB::ponctlOntSerial.1.5``) for a numeric OID;
        the OID itself when no loaded name covers it."""
        found = self.object_of(oid)
        if found is None:
            return normalize_oid(oid)
        node, rest = found
        name = f"{node.module}::{node.name}" if qualified else node.name
        return f"{name}.{rest}" if rest else name

    def column_of(self, oid: str) -> tuple[MibNode, str] | None:
        """For an instance of a table column: the column node and the row index."""
        found = self.object_of(oid)
        if found is None or not found[1]:
            return None
        node, index = found
        entry = self.object_of(node.oid.rpartition(".")[0])
        if entry is None or not entry[0].index or entry[1]:
            return None
        return node, index

    def is_row_status(self, oid: str) -> bool:
        """True for an instance of a column whose SYNTAX is RowStatus."""
        found = self.column_of(oid)
        return found is not None and found[0].syntax == "RowStatus"

    def columns(self, entry_oid: str) -> list[MibNode]:
        """The column nodes of a table entry, in column order."""
        entry = normalize_oid(entry_oid)
        found = [n for n in self._qualified.values()
                 if n.kind == "OBJECT-TYPE" and n.oid.rpartition(".")[0] == entry]
        return sorted(found, key=lambda n: int(n.oid.rpartition(".")[2]))

    def names_under(self, root: str) -> list[str]:
        """Names of the nodes in a subtree (for listings and completion)."""
        base = self.resolve(root)
        return sorted(n.name for n in self._qualified.values() if in_subtree(n.oid, base))


def mib_dirs() -> list[Path]:
    """The directories ``default_resolver`` reads."""
    env = os.environ.get(MIB_DIRS_ENV)
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [PROJECT_MIB_DIR] if PROJECT_MIB_DIR.is_dir() else []


@functools.lru_cache(maxsize=1)
def default_resolver() -> MibResolver:
    """Built-in names plus every MIB file in ``mib_dirs()``, parsed once per process."""
    dirs = mib_dirs()
    if not dirs:
        log.warning("no MIB directory found (set %s); only standard names resolve",
                    MIB_DIRS_ENV)
    return MibResolver.load(*dirs)
