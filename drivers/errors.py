"""One root error for every driver, and a subtree per failure layer.

Library exceptions (asyncssh, OSError, pysnmp, lxml) are converted once, at the transport
edge, with ``raise ... from``. The agent maps these onto order errors: ``ConnectError``,
``DriverTimeoutError`` and ``SessionLostError`` are connection errors (retry when the device
is back); ``RejectedError`` is the device refusing the change (keep its words verbatim);
``AuthenticationError`` and ``HostKeyError`` need an operator; ``UnsupportedError`` is a
profile asking a protocol for something it cannot do.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class DriverError(Exception):
    """Root of every error a driver raises. ``host`` names the device when known."""

    def __init__(self, message: str, *, host: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.host = host

    def __str__(self) -> str:
        return f"{self.host}: {self.message}" if self.host else self.message


class ConnectError(DriverError):
    """The device could not be reached: refused, unreachable, name not resolved."""


class RefusedError(ConnectError):
    """Nothing listens on that address and port."""


class UnreachableError(ConnectError):
    """No route, host down, or network unreachable."""


class NameResolutionError(ConnectError):
    """The host name does not resolve."""


class AuthenticationError(DriverError):
    """The device refused the credentials (wrong password, key, community or v3 user)."""


class HostKeyError(DriverError):
    """The SSH host key is unknown or differs from the known_hosts entry: possible MITM."""


class DriverTimeoutError(DriverError, TimeoutError):
    """A network await ran past its timeout. Also a ``TimeoutError``."""


class SessionLostError(DriverError):
    """The session closed under us (dropped mid-reply, killed, device rebooted)."""


class ProtocolError(DriverError):
    """The peer broke the protocol: malformed reply, bad framing, unexpected message."""


class UnsupportedError(DriverError):
    """The protocol or this device cannot do what was asked; declared, never faked."""


class RejectedError(DriverError):
    """The device understood the request and refused it; carries the device's own words."""


class MismatchError(RejectedError):
    """The device accepted a change but reads back something else than was written.

    A separate type because the agent reports it as "mismatch", not "rejected".
    """


@dataclass(frozen=True, slots=True)
class NetconfErrorInfo:
    """One ``<rpc-error>``, verbatim (RFC 6241 Appendix A)."""

    type: str
    tag: str
    severity: str
    message: str
    path: str | None = None
    app_tag: str | None = None
    info: dict[str, str] = field(default_factory=dict)


class NetconfRejectedError(RejectedError):
    """``<rpc-reply>`` carried ``<rpc-error>``s; ``errors`` holds them, ``raw`` the reply."""

    def __init__(self, errors: list[NetconfErrorInfo], raw: bytes, *,
                 host: str | None = None) -> None:
        first = errors[0] if errors else None
        text = "; ".join(f"{e.tag}: {e.message}" + (f" at {e.path}" if e.path else "")
                         for e in errors) or "rpc-error without details"
        super().__init__(text, host=host)
        self.errors = errors
        self.raw = raw
        self.tag = first.tag if first else None


class NetconfLockDeniedError(NetconfRejectedError):
    """The device refused a ``<lock>``: another session holds the datastore (tag lock-denied).

    ``holder`` is the session id the device named in error-info, when it did.
    """

    @property
    def holder(self) -> str | None:
        for e in self.errors:
            if e.tag == "lock-denied":
                return e.info.get("session-id")
        return None


class SnmpRejectedError(RejectedError):
    """The agent answered with an error-status (e.g. notWritable, inconsistentValue)."""

    def __init__(self, status: str, index: int, oid: str | None, *,
                 host: str | None = None) -> None:
        where = f" on {oid}" if oid else ""
        super().__init__(f"{status} (varbind {index}{where})", host=host)
        self.status = status
        self.index = index
        self.oid = oid


class CliRejectedError(RejectedError):
    """A CLI line matched the platform's error patterns; later lines were not sent."""

    def __init__(self, line: str, line_no: int, output: str, *,
                 host: str | None = None) -> None:
        super().__init__(f"line {line_no} {line!r} failed: {output.strip()}", host=host)
        self.line = line
        self.line_no = line_no
        self.output = output
