"""Drivers for configured devices: :class:`agent.settings.Device` + its profile -> a driver.

Credentials are references in the settings (``{env: VAR}`` or ``{file: PATH}``); they are
resolved here, once, when the factory is made, so a missing secret is reported at start-up
(a :class:`agent.settings.SettingsError` naming the variable or file, never the value) and
not at the first push. SSH host keys are checked against the device's ``known_hosts`` (or
``~/.ssh/known_hosts``), unless the device opts out with ``insecure_no_host_key_check``
(lab only; the SSH transport logs it on every connection).

The protocol is the device's (``netconf``, ``snmp`` or ``ssh``); a CLI device's dialect is its
profile's ``platform``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import asyncssh

from agent.profiles import Profile
from agent.settings import Device, SettingsError, SshCredentials
from drivers.base import Driver
from drivers.cli import CliDriver, load_platform
from drivers.netconf import NetconfDriver
from drivers.snmp import SnmpDriver, SnmpTarget
from drivers.ssh_transport import SshTarget

DriverFactory = Callable[[], Driver[Any]]


def _environ(environ: Mapping[str, str] | None) -> dict[str, str] | None:
    return None if environ is None else dict(environ)


def ssh_target(device: Device, environ: Mapping[str, str] | None = None) -> SshTarget:
    """Where and how to log in to a NETCONF or CLI device, secrets resolved."""
    creds: SshCredentials | None = device.ssh
    if creds is None:
        raise SettingsError(f"device {device.name}: a {device.protocol} device needs 'ssh' "
                            f"credentials")
    password = creds.password.resolve(_environ(environ)) if creds.password else None
    keys: tuple[asyncssh.SSHKey, ...] = ()
    if creds.key_file is not None:
        try:
            keys = (asyncssh.read_private_key(creds.key_file),)
        except (OSError, asyncssh.KeyImportError) as exc:
            raise SettingsError(f"device {device.name}: cannot read the SSH key "
                                f"{creds.key_file}: {type(exc).__name__}") from None
    return SshTarget(device.address, device.port, creds.username, password, keys,
                     known_hosts=creds.known_hosts,
                     insecure_no_host_key_check=creds.insecure_no_host_key_check,
                     timeout=device.timeout)


def snmp_target(device: Device, environ: Mapping[str, str] | None = None) -> SnmpTarget:
    """The SNMP agent and credentials of a device, secrets resolved (v2c or v3 authPriv)."""
    creds = device.snmp
    if creds is None:
        raise SettingsError(f"device {device.name}: an snmp device needs 'snmp' credentials")
    env = _environ(environ)
    if creds.version == "v2c":
        assert creds.community is not None  # the settings model checked it
        return SnmpTarget(device.address, device.port, version="v2c",
                          community=creds.community.resolve(env), timeout=device.timeout)
    assert creds.user is not None
    assert creds.auth_key is not None
    assert creds.priv_key is not None
    return SnmpTarget(device.address, device.port, version="v3", user=creds.user,
                      auth_key=creds.auth_key.resolve(env), priv_key=creds.priv_key.resolve(env),
                      auth_protocol=creds.auth_protocol, priv_protocol=creds.priv_protocol,
                      security_level="authPriv", timeout=device.timeout)


def netconf_driver(target: SshTarget) -> NetconfDriver:
    """The agent's NETCONF driver session for ``target`` (unconnected).

    Confirmed commits without a persist token: if the agent dies between commit and confirm,
    the device reverts the change when the session drops, instead of refusing every other
    commit until the confirm timeout (a restarted agent re-runs the push, whose record is
    still pending). Scoped compare: a push reads only the entries its payload names, so its
    cost follows the batch, not the OLT's size (whole-datastore reads made 10,000 ONTs
    quadratic).
    """
    return NetconfDriver(target, persist_confirmed=False, scoped_compare=True)


def driver_factory(device: Device, profile: Profile,
                   environ: Mapping[str, str] | None = None) -> DriverFactory:
    """A function that makes a new (unconnected) driver session for ``device``.

    Secrets and the CLI platform are resolved now; each call returns a fresh driver.
    """
    if profile.protocol != device.protocol:
        raise SettingsError(f"device {device.name} speaks {device.protocol} but its profile "
                            f"{profile.name!r} is for {profile.protocol}")
    if device.protocol == "netconf":
        nc_target = ssh_target(device, environ)
        return lambda: netconf_driver(nc_target)
    if device.protocol == "snmp":
        target = snmp_target(device, environ)
        return lambda: SnmpDriver(target)
    if profile.platform is None:
        raise SettingsError(f"profile {profile.name!r} of device {device.name} names no CLI "
                            f"platform")
    cli_target = ssh_target(device, environ)
    platform = load_platform(profile.platform)
    return lambda: CliDriver(cli_target, platform)


def make_driver(device: Device, profile: Profile,
                environ: Mapping[str, str] | None = None) -> Driver[Any]:
    """One driver session for ``device`` (see :func:`driver_factory`)."""
    return driver_factory(device, profile, environ)()
