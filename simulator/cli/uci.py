"""A gateway's shell: BusyBox ash on OpenWrt, with ``uci`` for the two settings ponctl manages.

::

    root@gw1:~# uci set ponctl.analytics.phan_url='https://phan.example/t/abc'
    root@gw1:~# uci changes
    ponctl.analytics.phan_url='https://phan.example/t/abc'
    root@gw1:~# uci commit ponctl

As on OpenWrt, ``uci set`` only stages a change; ``uci commit`` makes it take effect (here:
``gateway.set(...)``). Staged changes belong to this session. Values are checked against the
gateway's YANG leaf types when they are set, and again by the gateway on commit.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from simulator.cli.shell import Reply
from simulator.config.errors import RpcError
from simulator.config.namespaces import GW
from simulator.config.schema import GATEWAY_SCHEMA, LeafType
from simulator.devices import Gateway

PACKAGE = "ponctl"
SECTIONS = {"analytics": "analytics", "wan": "wan"}  # section -> type


@dataclass(frozen=True, slots=True)
class _Option:
    path: str  # package.section.option
    leaf: str  # the gateway YANG leaf behind it


OPTIONS = {o.path: o for o in (_Option("ponctl.analytics.phan_url", "phan-url"),
                               _Option("ponctl.wan.vlan", "wan-vlan"))}


def _leaf_type(leaf: str) -> LeafType:
    gw = GATEWAY_SCHEMA.child(GW, "gateway")
    node = gw.child(GW, leaf) if gw is not None else None
    assert node is not None, leaf
    assert node.type is not None, leaf
    return node.type


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


class _UciError(Exception):
    """``uci: <message>``, exit status 1."""


class UciShell:
    """One shell session on a gateway (pure apart from the gateway it commits to)."""

    def __init__(self, gateway: Gateway, *, interactive: bool = True) -> None:
        self.gateway = gateway
        self.interactive = interactive
        self.page_lines = 0  # ash does not page
        self.staged: dict[str, str] = {}  # option path -> value, until commit or revert
        self._close = False

    @property
    def banner(self) -> str:
        gw = self.gateway
        return ("\n\nBusyBox v1.36.1 (2024-11-12 12:00:00 UTC) built-in shell (ash)\n\n"
                f"  {gw.model} {gw.firmware} -- {gw.name} (serial {gw.serial}, MAC {gw.mac})\n"
                " -----------------------------------------------------\n\n")

    @property
    def prompt(self) -> str:
        return f"root@{self.gateway.name}:~# "

    def handle(self, line: str) -> Reply:
        """Run one line: commands joined by ``;``, ``&&`` or ``||``."""
        try:
            lexer = shlex.shlex(line.rstrip("\r\n"), posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError:
            return Reply("-ash: syntax error: unterminated quoted string\n", self.prompt, 2)
        out: list[str] = []
        status = 0
        command: list[str] = []
        run_next = True
        for tok in [*tokens, ";"]:
            if tok not in (";", "&&", "||"):
                if set(tok) <= set(";&|<>()") and tok:
                    out.append(f"-ash: syntax error: '{tok}' is not supported here\n")
                    return Reply("".join(out), self.prompt, 2)
                command.append(tok)
                continue
            if command and run_next:
                text, status = self._run(command)
                out.append(text)
                if self._close:
                    break
            elif not command and tok != ";":
                out.append(f"-ash: syntax error: unexpected \"{tok}\"\n")
                return Reply("".join(out), self.prompt, 2)
            command = []
            run_next = tok == ";" or (tok == "&&") == (status == 0)
        return Reply("".join(out), self.prompt, status, self._close)

    def _run(self, argv: list[str]) -> tuple[str, int]:
        name, args = argv[0], argv[1:]
        if name in ("exit", "logout"):
            self._close = True
            return "", 0
        if name == "echo":
            return " ".join(args) + "\n", 0
        if name == "true":
            return "", 0
        if name == "false":
            return "", 1
        if name == "uci":
            quiet = bool(args) and args[0] == "-q"
            try:
                return self._uci(args[1:] if quiet else args), 0
            except _UciError as exc:
                return ("" if quiet else f"uci: {exc}\n"), 1
        return f"-ash: {name}: not found\n", 127

    # ---- uci -----------------------------------------------------------------------------
    def _committed(self, path: str) -> str | None:
        if path == "ponctl.analytics.phan_url":
            return self.gateway.phan_url or None
        if path == "ponctl.wan.vlan":
            return str(self.gateway.wan_vlan)
        return None

    def _value(self, path: str) -> str | None:
        """What ``uci get`` sees: a staged change, else the committed value (as on OpenWrt)."""
        if path in self.staged:
            return self.staged[path] or None
        return self._committed(path)

    def _uci(self, args: list[str]) -> str:
        if not args:
            return ("Usage: uci [-q] <command> [<arguments>]\n\n"
                    "Commands:\n\tget, set, delete, show, changes, commit, revert\n")
        cmd, rest = args[0], args[1:]
        if cmd == "get" and len(rest) == 1:
            return self._get(rest[0])
        if cmd == "set" and len(rest) == 1:
            return self._set(rest[0])
        if cmd == "delete" and len(rest) == 1:
            return self._set(rest[0] + "=") if "=" not in rest[0] else self._invalid()
        if cmd in ("show", "changes", "commit", "revert") and len(rest) <= 1:
            target = rest[0] if rest else None
            if target is not None and target.split(".")[0] != PACKAGE:
                raise _UciError("Entry not found")
            if cmd == "show":
                return self._show(target)
            if cmd == "changes":
                return "".join((f"{p}={_quote(v)}" if v else f"-{p}") + "\n"
                               for p, v in self.staged.items()
                               if target is None or p.startswith(target))
            if cmd == "commit":
                return self._commit()
            for path in [p for p in self.staged if target is None or p.startswith(target)]:
                del self.staged[path]
            return ""
        return self._invalid()

    def _invalid(self) -> str:
        raise _UciError("Invalid argument")

    def _get(self, path: str) -> str:
        parts = path.split(".")
        if len(parts) == 2 and parts[0] == PACKAGE and parts[1] in SECTIONS:
            return SECTIONS[parts[1]] + "\n"
        value = self._value(path) if path in OPTIONS else None
        if value is None:
            raise _UciError("Entry not found")
        return value + "\n"

    def _set(self, assignment: str) -> str:
        path, eq, value = assignment.partition("=")
        if not eq:
            return self._invalid()
        parts = path.split(".")
        if parts[0] != PACKAGE:
            raise _UciError("Entry not found")
        if len(parts) == 2 and SECTIONS.get(parts[1]) == value:
            return ""  # (re)declaring a section that exists is a no-op
        option = OPTIONS.get(path)
        if option is None:
            return self._invalid()
        if value:
            try:
                _leaf_type(option.leaf).check(value)
            except ValueError as exc:
                raise _UciError("Invalid argument") from exc
        elif option.leaf == "wan-vlan":
            return self._invalid()  # the WAN VLAN always has a value; 0 means untagged
        self.staged[path] = value
        return ""

    def _show(self, target: str | None) -> str:
        entries: list[tuple[str, str]] = []
        for section, stype in SECTIONS.items():
            spath = f"{PACKAGE}.{section}"
            entries.append((spath, f"{spath}={stype}"))
            for path in OPTIONS:
                value = self._value(path) if path.startswith(spath + ".") else None
                if value is not None:
                    entries.append((path, f"{path}={_quote(value)}"))
        lines = [text for key, text in entries
                 if target in (None, PACKAGE) or key == target or key.startswith(f"{target}.")]
        if not lines:
            raise _UciError("Entry not found")
        return "".join(line + "\n" for line in lines)

    def _commit(self) -> str:
        if not self.staged:
            return ""
        refused = self.gateway.faults.refuse_commit
        if refused:
            raise _UciError(f"I/O error ({refused})")
        url = self.staged.get("ponctl.analytics.phan_url")
        vlan = self.staged.get("ponctl.wan.vlan")
        try:
            self.gateway.set(phan_url=url, wan_vlan=int(vlan) if vlan is not None else None)
        except (RpcError, ValueError) as exc:
            raise _UciError("Invalid argument") from exc
        self.staged.clear()
        return ""
