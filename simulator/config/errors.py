"""NETCONF-shaped errors (RFC 6241 Appendix A) raised by the configuration engine."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RpcError(Exception):
    """One ``<rpc-error>``: every face reports it in its own way (CLI line, SNMP status)."""

    tag: str
    message: str
    type: str = "application"
    path: str | None = None
    app_tag: str | None = None
    info: dict[str, str] = field(default_factory=dict)
    severity: str = "error"

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.tag}: {self.message}{where}"
