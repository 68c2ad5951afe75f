"""Writing PHAN URLs to gateways, and clearing them, durably and idempotently.

:class:`GatewayWriter` brings each gateway to what :mod:`agent.lines` says it should hold:

* it issues a line's PHAN URL (``settings.phan.base_url`` + an AES-GCM token of the line code
  under the current key, :mod:`agent.phan`) when the line is first associated;
* :meth:`GatewayWriter.kick` writes one gateway in the background (one task per gateway at a
  time; all of them share the engine's push limiter): record ``writing``, connect through the
  gateway class's protocol and profile, load the rendering, compare, write only the difference,
  read back, and record ``written``, or the classified error;
* a gateway that cannot be reached (its ONT is not up yet, it was unplugged) stays ``pending``
  with a connection error: the engine kicks the gateways behind an ONT when one of the ONT's
  orders turns active or the ONT comes up, and a sweep retries the rest every
  ``retry_interval`` seconds. A gateway registered behind an ONT that the store shows cannot
  be carrying its traffic (not seen yet, absent, or unclaimed: not configured on its OLT) is
  held ``pending`` without being contacted (:meth:`LineStore.hold_for_ont`): an
  unreachable gateway costs a full timeout, and thousands of them waiting for their ONTs
  would hold the push limiter the OLT pushes share;
* a refusal or a read-back that differs is ``failed`` with the device's words; it is not
  retried by itself (a resend, :meth:`GatewayWriter.resend`, does);
* on start, what a crash left ``writing`` is written again (idempotent: a rewrite of an equal
  value sends nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from agent.connect import driver_factory
from agent.discovery import STORE_STATE, UNCLAIMED
from agent.errors import ErrorClass as DriverErrorClass
from agent.errors import classify
from agent.intent import GatewayIntent, IntentError
from agent.lines import Gateway, GatewayPhase, GatewayState, LineStore
from agent.phan import Keyring, PhanError, url_for
from agent.profiles import Profile, ProfileError, load_profile
from agent.push import CONFIRM_TIMEOUT
from agent.render import Payload, RenderError, render_gateway, render_gateway_clear
from agent.settings import Settings, SettingsError
from agent.status import ErrorClass
from drivers.base import Driver
from drivers.errors import AuthenticationError, DriverError, HostKeyError

log = logging.getLogger(__name__)

_UNCLAIMED_CONDITION = STORE_STATE[UNCLAIMED][1]  # how the store records an unclaimed ONT
RETRIES_SOON = 5  # connection failures retried after 1, 2, 4, 8, 16 s before the sweep's turn


class PhanNotConfigured(Exception):
    """URLs cannot be issued: no ``phan`` settings or no usable key."""


class GatewayWriter:
    """See the module docstring. ``start()`` after the store is open; ``close()`` before."""

    def __init__(self, lines: LineStore, settings: Settings, *,
                 limiter: asyncio.Semaphore,
                 profiles: Callable[[str], Profile] = load_profile,
                 environ: Mapping[str, str] | None = None,
                 keyring: Keyring | None = None,
                 retry_interval: float = 60.0,
                 confirm_timeout: float | None = CONFIRM_TIMEOUT) -> None:
        self.lines = lines
        self.settings = settings
        self.limiter = limiter
        self.profiles = profiles
        self.environ = environ
        self.retry_interval = retry_interval
        self.confirm_timeout = confirm_timeout
        self._keyring = keyring
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._helpers: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._later: dict[str, asyncio.TimerHandle] = {}
        self._profiles: dict[str, Profile] = {}  # profile name -> loaded profile
        self._held: set[str] = set()  # last sync held it for its ONT (no device contact)
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- PHAN URLs -------------------------------------------------------------------------
    def keyring(self) -> Keyring:
        if self._keyring is None:
            phan = self.settings.phan
            try:
                if phan is not None and phan.keys_file is not None:
                    self._keyring = Keyring.from_file(phan.keys_file)
                else:
                    self._keyring = Keyring.from_env(environ=self.environ)
            except PhanError as exc:
                raise PhanNotConfigured(f"no PHAN key to issue URLs with: {exc}") from None
        return self._keyring

    def issue_url(self, code: str) -> str:
        """A new PHAN URL for line ``code`` (:class:`PhanNotConfigured` if it cannot be)."""
        if self.settings.phan is None:
            raise PhanNotConfigured("PHAN URLs are not configured: the settings have no "
                                    "'phan' section with a base_url")
        try:
            return url_for(self.settings.phan.base_url, code, self.keyring())
        except PhanError as exc:
            raise PhanNotConfigured(str(exc)) from None

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Re-run what a crash left ``writing``, try every ``pending`` one, start the sweep."""
        for st in await self.lines.states([GatewayPhase.WRITING, GatewayPhase.PENDING]):
            self.kick(st.gateway)
        if self._sweeper is None and self.retry_interval > 0:
            self._sweeper = asyncio.create_task(self._sweep(), name="gateway-sweep")

    async def close(self) -> None:
        for handle in self._later.values():
            handle.cancel()
        self._later.clear()
        tasks = [*self._tasks.values(), *self._helpers]
        if self._sweeper is not None:
            tasks.append(self._sweeper)
            self._sweeper = None
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        self._helpers.clear()
        self._idle.set()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.retry_interval)
            try:
                for st in await self.lines.states([GatewayPhase.PENDING]):
                    self.kick(st.gateway)
            except Exception:
                log.exception("gateway sweep failed")

    async def idle(self) -> None:
        """Wait until no gateway write is running (tests, the demo, direct mode)."""
        while self._tasks or self._helpers:
            self._idle.clear()
            await self._idle.wait()

    # ---- kicking ---------------------------------------------------------------------------
    def kick(self, name: str) -> None:
        """Write ``name`` in the background (again after the running write, if one runs)."""
        if name in self._tasks:
            self._again.add(name)
            return
        task = asyncio.create_task(self._run(name), name=f"gateway-{name}")
        self._tasks[name] = task
        self._idle.clear()

    def kick_ont(self, serial: str) -> None:
        """Write the gateways behind ONT ``serial`` that are not in sync."""
        async def run() -> None:
            for name in await self.lines.gateways_behind(serial):
                self.kick(name)

        task = asyncio.create_task(run(), name=f"gateways-behind-{serial}")
        self._helpers.add(task)
        self._idle.clear()
        task.add_done_callback(self._helper_done)

    def _helper_done(self, task: asyncio.Task[None]) -> None:
        self._helpers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("finding the gateways to write failed: %s", task.exception())
        if not self._tasks and not self._helpers:
            self._idle.set()

    async def _run(self, name: str) -> None:
        try:
            while True:
                self._again.discard(name)
                handle = self._later.pop(name, None)
                if handle is not None:
                    handle.cancel()
                try:
                    st = await self.sync(name)
                except Exception:
                    log.exception("writing gateway %s failed", name)
                    st = None
                if st is not None and st.phase is GatewayPhase.PENDING \
                        and st.error_class is ErrorClass.CONNECTION_ERROR \
                        and st.attempts <= RETRIES_SOON and name not in self._held:
                    # Its ONT may have just come up and the gateway still be booting: retry
                    # soon, backing off; after that, the ONT's next event or the sweep.
                    delay = min(2.0 ** (st.attempts - 1), max(self.retry_interval, 1.0))
                    self._later[name] = asyncio.get_running_loop().call_later(
                        delay, self._retry_soon, name)
                if name not in self._again:
                    break
        finally:
            self._tasks.pop(name, None)
            if not self._tasks and not self._helpers:
                self._idle.set()

    def _retry_soon(self, name: str) -> None:
        self._later.pop(name, None)
        self.kick(name)

    async def resend(self, name: str) -> GatewayState | None:
        """Write the gateway again whatever its phase (a failed write, a suspected change)."""
        st = await self.lines.gateway_state(name)
        if st is None:
            return None
        await self.lines.mark_stale(name, "resend requested")
        return await self.sync(name)

    # ---- one write -------------------------------------------------------------------------
    async def sync(self, name: str) -> GatewayState | None:
        """Bring ``name`` to what it should hold now; its state after (None: nothing to do)."""
        held = await self.lines.hold_for_ont(name, _UNCLAIMED_CONDITION)
        if held is not None:
            self._held.add(name)
            return held
        self._held.discard(name)
        st = await self.lines.begin_write(name)
        if st is None:
            return await self.lines.gateway_state(name)
        gw = await self.lines.get_gateway(name)
        if gw is None:
            return await self.lines.finish_write(name, st.desired_url, GatewayPhase.FAILED,
                                                 error_class=ErrorClass.CONFIGURATION_MISSING,
                                                 message=f"gateway {name} is not registered")
        async with self.limiter:
            phase, cls, message = await self._write(gw, st.desired_url)
        level = logging.INFO if phase is GatewayPhase.WRITTEN else logging.WARNING
        log.log(level, "gateway %s: %s", name, message)
        return await self.lines.finish_write(name, st.desired_url, phase, error_class=cls,
                                             message=message)

    def _payload(self, gw: Gateway, url: str) -> tuple[Callable[[], Driver[Any]], Payload]:
        """The driver factory and the rendering for ``gw`` (SettingsError, ProfileError,
        IntentError, RenderError when the configuration lacks something)."""
        try:
            gclass = self.settings.gateway_class(gw.gateway_class)
        except KeyError:
            raise SettingsError(f"gateway {gw.name}'s class {gw.gateway_class!r} is not in the "
                                f"settings' gateway_classes") from None
        profile = self._profiles.get(gclass.profile)
        if profile is None:  # read once: loading parses the YAML and builds its templates
            profile = self._profiles[gclass.profile] = self.profiles(gclass.profile)
        if profile.kind != "gateway":
            raise SettingsError(f"gateway class {gclass.name}: profile {profile.name!r} is not "
                                f"a gateway profile")
        factory = driver_factory(gclass.device(gw.name, gw.address, gw.port), profile, self.environ)
        if url:
            payload = render_gateway(profile, GatewayIntent(gw.name, url, gclass.wan_vlan))
        else:
            payload = render_gateway_clear(profile, gw.name)
        return factory, payload

    async def _write(self, gw: Gateway, url: str,
                     ) -> tuple[GatewayPhase, ErrorClass | None, str]:
        what = "PHAN URL written" if url else "PHAN URL cleared"
        try:
            factory, payload = self._payload(gw, url)
        except (SettingsError, ProfileError, IntentError, RenderError) as exc:
            return GatewayPhase.FAILED, ErrorClass.CONFIGURATION_MISSING, str(exc)
        driver = factory()
        timeout = self.settings.gateway_class(gw.gateway_class).timeout * 3
        try:
            async with asyncio.timeout(timeout):
                await driver.connect()
                await driver.load_candidate(payload)
                diff = await driver.compare()
                if diff.empty:
                    await driver.discard()
                    changed = False
                else:
                    caps = driver.capabilities
                    result = await driver.commit(
                        confirm_timeout=self.confirm_timeout if caps.confirmed_commit else None)
                    if result.confirm_pending:
                        await driver.confirm()
                    changed = True
                await driver.load_candidate(payload)
                left = await driver.compare()
                await driver.discard()
        except TimeoutError:
            return (GatewayPhase.PENDING, ErrorClass.CONNECTION_ERROR,
                    f"gateway {gw.name} at {gw.address} did not answer within {timeout:g} s; "
                    f"retried when its ONT comes up or on the next sweep")
        except DriverError as exc:
            c = classify(exc)
            if isinstance(exc, (AuthenticationError, HostKeyError)):
                # Reached, but not trusted either way: an operator must fix it, then resend.
                return GatewayPhase.FAILED, ErrorClass.CONNECTION_ERROR, c.message
            if c.error_class is DriverErrorClass.CONNECTION:
                return (GatewayPhase.PENDING, ErrorClass.CONNECTION_ERROR,
                        f"gateway {gw.name} cannot be reached ({c.message}); retried when its "
                        f"ONT comes up or on the next sweep")
            return GatewayPhase.FAILED, ErrorClass(c.error_class.value), c.message
        finally:
            with contextlib.suppress(DriverError):
                await driver.close()
        if not left.empty:
            return (GatewayPhase.FAILED, ErrorClass.MISMATCH,
                    f"gateway {gw.name} reads back something else after the write:\n"
                    f"{left.text}")
        return (GatewayPhase.WRITTEN, None,
                f"{what} and read back" if changed else f"{what}: the gateway already held it")

    async def check(self, name: str) -> tuple[bool | None, str]:
        """Does the gateway hold what it should? ``(True, "")`` in sync, ``(False, diff)``,
        ``(None, reason)`` when it cannot be told (unreachable, nothing to hold)."""
        st = await self.lines.gateway_state(name)
        gw = await self.lines.get_gateway(name)
        if st is None or gw is None:
            return None, f"gateway {name} has nothing to hold"
        try:
            factory, payload = self._payload(gw, st.desired_url)
        except (SettingsError, ProfileError, IntentError, RenderError) as exc:
            return None, str(exc)
        driver = factory()
        timeout = self.settings.gateway_class(gw.gateway_class).timeout * 2
        try:
            async with asyncio.timeout(timeout):
                await driver.connect()
                await driver.load_candidate(payload)
                diff = await driver.compare()
                await driver.discard()
        except TimeoutError:
            return None, f"gateway {name} did not answer within {timeout:g} s"
        except DriverError as exc:
            return None, classify(exc).message
        finally:
            with contextlib.suppress(DriverError):
                await driver.close()
        return (True, "") if diff.empty else (False, diff.text)
