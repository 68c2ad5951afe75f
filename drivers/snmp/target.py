"""Where an SNMP agent is and how to talk to it.

Secrets (community, keys) are excluded from ``repr`` so they never reach logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

Version = Literal["v1", "v2c", "v3"]
AuthProtocol = Literal["SHA", "SHA224", "SHA256", "SHA384", "SHA512"]
PrivProtocol = Literal["AES", "AES192", "AES256", "AES192C", "AES256C"]
SecurityLevel = Literal["authPriv", "authNoPriv"]

AUTH_NAMES: tuple[str, ...] = get_args(AuthProtocol)
#: AES192/AES256 extend the key as net-snmp does (draft-blumenthal-aes-usm-04); the C
#: suffix picks Reeder's extension (Cisco). See ``drivers.snmp.edge.PRIV_PROTOCOLS``.
PRIV_NAMES: tuple[str, ...] = get_args(PrivProtocol)


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    """An SNMP agent and the credentials to use with it.

    ``timeout`` is per try and ``retries`` counts the extra tries, so a silent agent costs
    ``timeout * (retries + 1)`` before DriverTimeoutError. ``max_repetitions`` sizes the
    GETBULK requests of a walk. ``max_get_oids`` caps the OIDs of one GET PDU (a longer GET
    is sent as several): agents differ in what they accept, and net-snmp drops a reply too
    big for a datagram instead of answering tooBig. A SET is always one PDU.
    """

    host: str
    port: int = 161
    version: Version = "v2c"
    community: str = field(default="public", repr=False)
    user: str = ""
    auth_key: str | None = field(default=None, repr=False)
    priv_key: str | None = field(default=None, repr=False)
    auth_protocol: AuthProtocol = "SHA"
    priv_protocol: PrivProtocol = "AES"
    security_level: SecurityLevel = "authPriv"
    timeout: float = 2.0
    retries: int = 1
    max_repetitions: int = 25
    max_get_oids: int = 60

    def __post_init__(self) -> None:
        if self.version not in ("v1", "v2c", "v3"):
            raise ValueError(f"SNMP version must be v1, v2c or v3, not {self.version!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} out of range")
        if self.timeout <= 0 or self.retries < 0 or min(self.max_repetitions,
                                                        self.max_get_oids) < 1:
            raise ValueError("timeout must be > 0, retries >= 0, max_repetitions and "
                             "max_get_oids >= 1")
        if self.version == "v3":
            if not self.user:
                raise ValueError("SNMPv3 needs a user")
            if self.auth_protocol not in AUTH_NAMES:
                raise ValueError(f"auth_protocol must be one of {', '.join(AUTH_NAMES)}")
            if self.priv_protocol not in PRIV_NAMES:
                raise ValueError(f"priv_protocol must be one of {', '.join(PRIV_NAMES)}")
            if self.security_level not in ("authPriv", "authNoPriv"):
                raise ValueError("security_level must be authPriv or authNoPriv "
                                 "(noAuthNoPriv is not supported)")
            # RFC 3414 2.6: passphrases shorter than 8 octets are refused by agents anyway.
            if not self.auth_key or len(self.auth_key) < 8:
                raise ValueError("SNMPv3 needs an auth_key of at least 8 characters")
            if self.security_level == "authPriv" and (not self.priv_key
                                                      or len(self.priv_key) < 8):
                raise ValueError("authPriv needs a priv_key of at least 8 characters")

    @property
    def address(self) -> str:
        """``host:port``, for messages."""
        return f"{self.host}:{self.port}"
