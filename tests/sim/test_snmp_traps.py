"""Notifications, received by a private net-snmp snmptrapd (v2c and v3 authPriv)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from simulator.devices import TrapTarget
from tests.sim.snmp_tools import (
    KNOWN_SERIAL,
    SETTINGS,
    free_udp_port,
    make_olt,
    need,
    operational,
    serving,
    tool_env,
)

DISCOVERED = ".1.3.6.1.4.1.32473.1.0.1"
UP = ".1.3.6.1.4.1.32473.1.0.2"
DOWN = ".1.3.6.1.4.1.32473.1.0.3"
TRAP_OID = ".1.3.6.1.6.3.1.1.4.1.0"


@dataclass
class Trap:
    security: str  # e.g. "TRAP2, SNMP v2c, community traps"
    varbinds: dict[str, str]

    @property
    def oid(self) -> str:
        return self.varbinds[TRAP_OID]


class TrapReceiver:
    """A private snmptrapd printing one line per notification."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def next(self, timeout: float = 5.0) -> Trap:
        assert self.proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(self.proc.stdout.readline(), timeout)).decode()
            if not line:
                raise AssertionError("snmptrapd exited")
            if line.startswith("TRAP "):
                security, _, rest = line[5:].rstrip("\n").partition("|")
                varbinds = {}
                for vb in rest.split("\t"):
                    oid, _, value = vb.partition(" = ")
                    varbinds[oid] = value.split(": ", 1)[-1].strip('"')
                return Trap(security, varbinds)

    async def take(self, n: int) -> list[Trap]:
        return [await self.next() for _ in range(n)]


def write_conf(home: Path, engine_id: bytes) -> Path:
    """snmptrapd's configuration: v3 traps come from the agent as the authoritative engine,
    so the receiver must know the user under the agent's engine ID."""
    home.mkdir(parents=True, exist_ok=True)
    conf = home / "snmptrapd.conf"
    conf.write_text(f"createUser -e 0x{engine_id.hex()} {SETTINGS.v3_user} SHA "
                    f"{SETTINGS.v3_auth_key} AES {SETTINGS.v3_priv_key}\n")
    return conf


@contextlib.asynccontextmanager
async def snmptrapd(home: Path, port: int, engine_id: bytes) -> AsyncIterator[TrapReceiver]:
    tool = need("snmptrapd")
    conf = write_conf(home, engine_id)
    proc = await asyncio.create_subprocess_exec(
        tool, "-f", "-Lo", "-C", "-c", str(conf), "--disableAuthorization=yes", "-m", "",
        "-On", "-F", "TRAP %P|%v\n", f"udp:127.0.0.1:{port}", env=tool_env(home),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        while b"NET-SNMP version" not in await asyncio.wait_for(proc.stdout.readline(), 10):
            pass  # printed once it listens
        yield TrapReceiver(proc)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def test_ont_discovered_trap_v2c_and_v3(tmp_path: Path) -> None:
    olt = make_olt(with_onts=False)
    port = free_udp_port()
    targets = [TrapTarget("127.0.0.1", port, "v2c", "traps"), TrapTarget("127.0.0.1", port, "v3")]
    async with serving(olt, targets) as agent, snmptrapd(tmp_path, port,
                                                         agent.engine_id) as receiver:
        olt.add_ont("WXYZ0000CAFE", "0/1/1")
        traps = await receiver.take(2)
    assert sorted(t.security.split(",")[1].strip() for t in traps) == ["SNMP v2c", "SNMP v3"]
    assert any("community traps" in t.security for t in traps)
    assert any(f"user {SETTINGS.v3_user}" in t.security for t in traps)
    for trap in traps:
        assert trap.oid == DISCOVERED
        # ponctlAutofindSerial.<port index 2>.<first discovery> and ponctlPonPortName.2
        assert trap.varbinds[".1.3.6.1.4.1.32473.1.1.4.1.2.2.1"] == "WXYZ0000CAFE"
        assert trap.varbinds[".1.3.6.1.4.1.32473.1.1.1.1.2.2"] == "0/1/1"
        assert int(trap.varbinds[".1.3.6.1.2.1.1.3.0"].split(")")[0].strip("(")) >= 0


async def test_ont_up_and_down_traps(tmp_path: Path) -> None:
    olt = make_olt(with_onts=False)
    port = free_udp_port()
    async with serving(olt, [TrapTarget("127.0.0.1", port, "v2c", "traps")]) as agent, \
            snmptrapd(tmp_path, port, agent.engine_id) as receiver:
        ont = olt.add_ont(KNOWN_SERIAL, "0/1/0")
        await operational(olt, KNOWN_SERIAL)
        (up,) = await receiver.take(1)
        ont.set_power(False)  # dying gasp, then not present: one ponctlOntDown
        (down,) = await receiver.take(1)
        ont.set_fibre(False)  # not operational any more: no second Down
        with contextlib.suppress(TimeoutError):
            extra = await receiver.next(timeout=0.3)
            raise AssertionError(f"unexpected notification {extra}")
    serial_row = ".1.3.6.1.4.1.32473.1.1.2.1.2.1.5"
    status_row = ".1.3.6.1.4.1.32473.1.1.2.1.5.1.5"
    assert up.oid == UP
    assert up.varbinds[serial_row] == KNOWN_SERIAL
    assert up.varbinds[status_row] == "3"
    assert down.oid == DOWN
    assert down.varbinds[serial_row] == KNOWN_SERIAL
    assert down.varbinds[status_row] == "5"
    assert down.varbinds[".1.3.6.1.4.1.32473.1.1.1.1.2.1"] == "0/1/0"
