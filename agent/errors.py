"""Order error classes (DESIGN.md, "The business flow") and the mapping of driver errors onto them.

Drivers raise typed errors (:mod:`drivers.errors`); :func:`classify` turns one into what an order
records: the error class, an actionable message, whether retrying by itself may help, and the
device's own words when the device said something.

The mapping, one row per driver error:

================================  =====================  =========  ==========================
driver error                      error class            retryable  why
================================  =====================  =========  ==========================
ConnectError (refused,            connection-error       no         the device or ONT is not
unreachable, name)                                                  there; the agent waits for
                                                                    it to come back (discovery
                                                                    event or poll), resending
                                                                    does not help
DriverTimeoutError                connection-error       no         same: a device too slow to
                                                                    answer is not reachable
SessionLostError                  connection-error       no         same
AuthenticationError               connection-error       no         an operator must fix the
                                                                    credentials
HostKeyError                      connection-error       no         an operator must check the
                                                                    host key / known_hosts
NetconfLockDeniedError            rejected               YES        another session holds the
                                                                    datastore lock: transient,
                                                                    retried with backoff
RejectedError meaning "network    configuration-missing  no         the network lacks the
service missing" (see below)                                        service (uplink without the
                                                                    S-VLAN); fixed by config
other RejectedError (NETCONF,     rejected               no         the device refused; its
SNMP, CLI)                                                          words are kept verbatim
MismatchError                     mismatch               no         read back differs from what
                                                                    was written; resend heals
UnsupportedError                  configuration-missing  no         the profile asks the
                                                                    protocol for something it
                                                                    cannot do
ProtocolError, any other          rejected               no         the device answered
DriverError                                                         nonsense; kept verbatim
================================  =====================  =========  ==========================

"Network service missing" refusals are recognised per protocol:

* NETCONF: an ``<rpc-error>`` whose ``error-app-tag`` is ``network-service-missing``, or whose
  message contains "network service missing".
* CLI: the device output contains "The VLAN does not exist" or "network service missing".
* SNMP: ``inconsistentValue`` on the ``ponctlServiceSVlan`` column of PONCTL-MIB. (The
  simulated OLT reports the refusal on the row's RowStatus; :mod:`agent.push` refines that
  case by reading the uplink VLAN table, since an SNMP error carries no text.)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from drivers.errors import (
    AuthenticationError,
    CliRejectedError,
    ConnectError,
    DriverError,
    DriverTimeoutError,
    HostKeyError,
    MismatchError,
    NetconfLockDeniedError,
    NetconfRejectedError,
    RejectedError,
    SessionLostError,
    SnmpRejectedError,
    UnsupportedError,
)

# PONCTL-MIB ponctlServiceSVlan (ponctlServiceEntry 4): configs/mibs/PONCTL-MIB.txt.
PONCTL_SERVICE_SVLAN = "1.3.6.1.4.1.32473.1.1.3.1.4"
NETWORK_SERVICE_MISSING_APP_TAG = "network-service-missing"
_MISSING_WORDS = ("network service missing", "the vlan does not exist")


class ErrorClass(enum.StrEnum):
    """The order error classes of DESIGN.md."""

    CONNECTION = "connection-error"
    CONFIGURATION_MISSING = "configuration-missing"
    REJECTED = "rejected"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class Classified:
    """A driver error as an order records it.

    ``message`` is for the operator (actionable); ``retryable`` says whether retrying by
    itself, with backoff, may help; ``device_words`` is what the device said, verbatim,
    when it said something (a refusal), else None.
    """

    error_class: ErrorClass
    message: str
    retryable: bool
    device_words: str | None = None


def _device(exc: DriverError) -> str:
    return exc.host or "the device"


def _words(exc: RejectedError) -> str:
    """The device's own words: NETCONF error messages, the CLI output, the SNMP status."""
    if isinstance(exc, NetconfRejectedError) and exc.errors:
        return "; ".join(e.message for e in exc.errors if e.message) or exc.message
    if isinstance(exc, CliRejectedError):
        return exc.output.strip() or exc.message
    return exc.message


def network_service_missing(exc: RejectedError) -> bool:
    """True if the refusal means the network lacks the service (S-VLAN not on the uplink)."""
    if isinstance(exc, NetconfRejectedError):
        return any(e.app_tag == NETWORK_SERVICE_MISSING_APP_TAG
                   or "network service missing" in e.message.lower() for e in exc.errors)
    if isinstance(exc, CliRejectedError):
        return any(w in exc.output.lower() for w in _MISSING_WORDS)
    if isinstance(exc, SnmpRejectedError):
        return (exc.status == "inconsistentValue" and exc.oid is not None
                and exc.oid.startswith(PONCTL_SERVICE_SVLAN + "."))
    return any(w in exc.message.lower() for w in _MISSING_WORDS)


def classify(exc: DriverError) -> Classified:
    """Map a driver error onto an order error class (see the module docstring's table)."""
    dev = _device(exc)
    if isinstance(exc, AuthenticationError):
        return Classified(ErrorClass.CONNECTION,
                          f"{dev} refused the credentials: fix the device's credentials in the "
                          f"agent's configuration, then resend ({exc.message})", False)
    if isinstance(exc, HostKeyError):
        return Classified(ErrorClass.CONNECTION,
                          f"{dev}'s SSH host key is unknown or changed: check the device and "
                          f"update known_hosts, then resend ({exc.message})", False)
    if isinstance(exc, DriverTimeoutError):
        return Classified(ErrorClass.CONNECTION,
                          f"{dev} did not answer in time ({exc.message}); the agent retries "
                          "when the device is reachable again", False)
    if isinstance(exc, ConnectError | SessionLostError):
        return Classified(ErrorClass.CONNECTION,
                          f"{dev} cannot be reached ({exc.message}); the agent retries when "
                          "the device is reachable again", False)
    if isinstance(exc, MismatchError):
        return Classified(ErrorClass.MISMATCH,
                          f"{dev} holds something else than was written ({exc.message}); "
                          "resend provisioning to re-apply it", False, exc.message)
    if isinstance(exc, NetconfLockDeniedError):
        holder = f" (session {exc.holder})" if exc.holder else ""
        return Classified(ErrorClass.REJECTED,
                          f"{dev}: the configuration is locked by another session{holder}; "
                          f"retried with backoff ({_words(exc)})", True, _words(exc))
    if isinstance(exc, RejectedError):
        words = _words(exc)
        if network_service_missing(exc):
            return Classified(ErrorClass.CONFIGURATION_MISSING,
                              f"network service missing on {dev}: {words}", False, words)
        return Classified(ErrorClass.REJECTED, f"{dev} refused the change: {words}", False,
                          words)
    if isinstance(exc, UnsupportedError):
        return Classified(ErrorClass.CONFIGURATION_MISSING,
                          f"the device profile asks for something the protocol cannot do: "
                          f"{exc}", False)
    return Classified(ErrorClass.REJECTED, f"{dev} failed: {exc.message}", False, exc.message)
