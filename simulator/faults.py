"""Faults that can be switched on a simulated device at run time."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class Faults:
    """Per-device faults. Each face consults them on every request.

    - ``latency``: seconds added before every reply (NETCONF RPC, SNMP PDU, CLI command).
    - ``drop_after``: close the session after this many requests (counted per session).
    - ``drop_mid_reply``: send half of the next reply, then close the session.
    - ``refuse_commit``: commits (and writes to running) fail with this device message.
    - ``snmp_loss``: probability (0..1) that an SNMP request is silently dropped.
    - ``wrong_credentials``: every login is refused, as if the password had been changed.
    - ``lock_held``: another (invisible) session holds the running and candidate locks.
    """

    latency: float = 0.0
    drop_after: int | None = None
    drop_mid_reply: bool = False
    refuse_commit: str | None = None
    snmp_loss: float = 0.0
    wrong_credentials: bool = False
    lock_held: bool = False

    def set(self, name: str, value: Any) -> None:
        """Set one fault by name, with its value checked; raises ValueError naming the problem."""
        names = {f.name for f in fields(self)}
        if name not in names:
            raise ValueError(f"unknown fault {name!r}; known faults: {', '.join(sorted(names))}")
        if name in ("latency", "snmp_loss"):
            number = float(value)
            if number < 0 or (name == "snmp_loss" and number > 1):
                raise ValueError(f"{name} must be {'0..1' if name == 'snmp_loss' else '>= 0'}")
            setattr(self, name, number)
        elif name == "drop_after":
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError("drop_after must be a non-negative integer or null")
            self.drop_after = value
        elif name == "refuse_commit":
            self.refuse_commit = None if value in (None, "", False) else str(value)
        else:
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
            setattr(self, name, value)

    def clear(self) -> None:
        for f in fields(self):
            setattr(self, f.name, f.default)

    def active(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != f.default}
