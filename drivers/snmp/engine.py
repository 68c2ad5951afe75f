"""pysnmp engines that load their MIB modules from compiled code, not from source.

pysnmp's ``MibBuilder.load_module`` runs each MIB module (pysnmp ships them as ``.py`` files)
with ``runpy.run_path`` whenever Python runs without ``-O`` (``if __debug__:``, "to enable
break points in loaded MIBs"), which compiles the module's source again on every load. A new
``SnmpEngine`` loads about fifteen such modules, so it cost ~100 ms of CPU (measured: 102 ms per
engine, 85% of it in ``compile``), and the agent builds one per SNMP session: each PHAN URL
written to an SNMP gateway paid it.

:func:`new_engine` builds the engine on a :class:`CachedMibBuilder`, which executes the same
module code but compiles each file once per process (the code object is keyed by path and
modification time, and executed in a fresh namespace each time, exactly as pysnmp's ``-O``
path does with its ``.pyc``). Everything else is pysnmp's own.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from pysnmp.entity.engine import SnmpEngine
from pysnmp.proto.rfc3412 import MsgAndPduDispatcher
from pysnmp.smi import builder, error, instrum

_CODE: dict[tuple[str, float], Any] = {}


def _compiled(path: str) -> Any:
    key = (path, os.stat(path).st_mtime)
    code = _CODE.get(key)
    if code is None:
        with open(path, "rb") as f:
            code = _CODE[key] = compile(f.read(), path, "exec")
    return code


class CachedMibBuilder(builder.MibBuilder):  # type: ignore[misc]
    """``MibBuilder`` whose ``load_module`` executes a per-process cache of compiled code."""

    def load_module(self, modName: str, **userCtx: Any) -> Any:
        seen_paths: set[str] = self._MibBuilder__modPathsSeen
        seen: dict[str, str] = self._MibBuilder__modSeen
        for source in self.get_mib_sources():
            path = source.full_path(modName, ".py")
            if isinstance(source, builder.DirMibSource) and os.path.isfile(path):
                code: Any = None  # compiled below, once per process
            else:  # a zipped source or bytecode only: as pysnmp reads it
                try:
                    code, sfx = source.read(modName)
                except OSError:
                    continue
                path = source.full_path(modName, sfx)
            if path in seen_paths:
                break
            seen_paths.add(path)
            namespace = {"mibBuilder": self, "userCtx": userCtx, "__file__": path,
                         "__name__": "<run_path>"}
            try:
                exec(code if code is not None else _compiled(path), namespace)  # noqa: S102
            except Exception:  # noqa: BLE001 - reported as pysnmp reports it
                seen_paths.discard(path)
                raise error.MibLoadError(f"MIB module '{path}' load error: "
                                         f"{traceback.format_exc()}") from None
            seen[modName] = path
            break
        if modName not in seen:
            raise error.MibNotFoundError(f'MIB file "{modName}.py[co]" not found in search path')
        return self


def new_engine() -> Any:
    """A fresh ``SnmpEngine`` (its own state, users and targets) built without recompiling."""
    dispatcher = MsgAndPduDispatcher(instrum.MibInstrumController(CachedMibBuilder()))
    return SnmpEngine(msgAndPduDsp=dispatcher)
