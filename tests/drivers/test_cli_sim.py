"""The SSH CLI driver against the simulator's CLI face, over real SSH on loopback.

The simulator shares no code with the driver: prompts, echo, paging, errors and faults are
whatever its Huawei-flavoured OLT CLI and OpenWrt-style gateway shell put on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from drivers.cli import CliDriver, Platform, load_platform
from drivers.cli.platform import Paging
from drivers.errors import (
    AuthenticationError,
    CliRejectedError,
    DriverTimeoutError,
    HostKeyError,
    RefusedError,
    SessionLostError,
    UnsupportedError,
)
from drivers.ssh_transport import SshTarget
from simulator.cli import CliServer
from simulator.devices import Gateway, Olt, Ont, OntState
from tests.conftest import eventually
from tests.sim.cli_helpers import (
    PASSWORD,
    SERIAL,
    USER,
    make_gateway,
    make_olt,
    provision_netconf,
)

MORE = "---- More ( Press 'Q' to break ) ----"
URL = "https://phan.example.net/l/7f3a9c"
SERIAL_HEX = "534C4E4B0000AB01"  # SLNK0000AB01 as the OLT prints it back
# The provisioning lines, spelled as `display current-configuration` prints them.
ONT_ADD = (f'ont add 0 1 sn-auth "{SERIAL_HEX}" omci ont-lineprofile-id 10 '
           'ont-srvprofile-id 20 desc "flat 1"')
NATIVE = "ont port native-vlan 0 1 eth 1 vlan 10"
TDP = "inbound traffic-table name tdp-default outbound traffic-table name tdp-default"


def service(index: int, s_vlan: int, c_vlan: int = 10, gem: int = 1001) -> str:
    return (f"service-port {index} vlan {s_vlan} gpon 0/1/0 ont 1 gemport {gem} multi-service "
            f"user-vlan {c_vlan} tag-transform translate-and-add inner-vlan {c_vlan} {TDP}")


PROVISION = ["interface gpon 0/1", ONT_ADD, NATIVE, "quit", service(1, 100)]


@dataclass
class Lab:
    device: Olt | Gateway
    server: CliServer
    key: asyncssh.SSHKey

    def target(self, *, user: str = USER, password: str = PASSWORD,
               key: asyncssh.SSHKey | None = None, timeout: float = 10.0) -> SshTarget:
        public = (key or self.key).export_public_key().decode().strip()
        return SshTarget("127.0.0.1", self.server.port, user, password,
                         known_hosts_text=f"[127.0.0.1]:{self.server.port} {public}\n",
                         timeout=timeout)

    @property
    def olt(self) -> Olt:
        assert isinstance(self.device, Olt)
        return self.device

    @property
    def gateway(self) -> Gateway:
        assert isinstance(self.device, Gateway)
        return self.device


async def _start(device: Olt | Gateway) -> Lab:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return Lab(device, await CliServer.start(device, "127.0.0.1", 0, key), key)


@pytest.fixture
async def olt_lab() -> AsyncIterator[Lab]:
    lab = await _start(make_olt())
    yield lab
    await lab.server.close()


@pytest.fixture
async def gw_lab() -> AsyncIterator[Lab]:
    olt = make_olt()
    ont = olt.add_ont(SERIAL, "0/1/0")
    provision_netconf(olt, serial=SERIAL, onu_id=1)  # the gateway's management path
    await eventually(lambda: bool(ont.applied))
    lab = await _start(make_gateway(olt))
    yield lab
    await lab.server.close()


@pytest.fixture(scope="module")
def huawei() -> Platform:
    return load_platform("huawei-olt")


@pytest.fixture(scope="module")
def openwrt() -> Platform:
    return load_platform("openwrt-uci")


@pytest.fixture
async def olt_cli(olt_lab: Lab, huawei: Platform) -> AsyncIterator[CliDriver]:
    async with CliDriver(olt_lab.target(), huawei) as driver:
        yield driver


def _add_autofind_onts(olt: Olt, count: int) -> None:
    for n in range(count):
        olt.add_ont(f"SLNK0000AC0{n}", "0/1/1")


# ---- session -----------------------------------------------------------------------------
async def test_connect_detects_the_prompt_and_disables_paging(olt_lab: Lab,
                                                              olt_cli: CliDriver) -> None:
    assert olt_cli.connected
    assert olt_cli.prompt == "OLT1>"
    assert olt_cli.channel.mode == "user"
    assert "SimuLight Integrated Access Software" in olt_cli.channel.banner
    caps = olt_cli.capabilities
    assert (caps.protocol, caps.candidate, caps.confirmed_commit, caps.validate,
            caps.transactions, caps.notifications, caps.rollback) == (
        "ssh", False, False, False, False, False, "none")
    _add_autofind_onts(olt_lab.olt, 4)  # about 40 lines: two screens if paging were on
    await eventually(lambda: len(olt_lab.olt.autofind()) == 4)
    out = await olt_cli.send_command("display ont autofind all")
    assert MORE not in out
    assert out.rstrip().endswith("The number of GPON autofind ONT is 4")
    assert olt_cli.channel.pages_answered == 0  # "scroll" turned paging off


async def test_exec_runs_one_shot_commands(olt_lab: Lab, olt_cli: CliDriver) -> None:
    assert "VERSION : V3.2.1" in await olt_cli.exec("display version")
    with pytest.raises(CliRejectedError) as info:
        await olt_cli.exec("display ont autofnd all")
    assert "% Unknown command, the error locates at '^'" in info.value.output
    # Without check the output comes back as it is; the shell session is untouched.
    assert "% Unknown command" in await olt_cli.exec("display ont autofnd all", check=False)
    assert olt_cli.prompt == "OLT1>"


# ---- provisioning --------------------------------------------------------------------------
async def test_provisioning_an_unclaimed_ont(olt_lab: Lab, olt_cli: CliDriver) -> None:
    olt = olt_lab.olt
    ont = olt.add_ont(SERIAL, "0/1/0")
    await eventually(lambda: ont.state == OntState.UNCLAIMED)
    await olt_cli.load_candidate(PROVISION)
    diff = await olt_cli.compare()
    assert diff.lines == tuple("+ " + line for line in PROVISION)

    result = await olt_cli.commit()
    assert result.changed
    assert not result.confirm_pending
    assert olt_cli.candidate == []
    assert olt_cli.prompt == "OLT1#"  # config mode left
    await eventually(lambda: ont.state == OntState.OPERATIONAL and bool(ont.applied))
    (svc,) = ont.applied.values()
    assert (svc.uni, svc.c_vlan, svc.s_vlan, svc.gemport_id) == (1, 10, 100, 1001)

    running = (await olt_cli.get_config()).data
    assert " " + ONT_ADD in running
    assert (await olt_cli.get_config(filter=r"^ service-port")).data == [" " + service(1, 100)]
    state = await olt_cli.get_state("display ont info 0 1 0 1")
    assert "Run state               : online" in state.data

    # Re-sending what is applied shows nothing left to send and changes nothing.
    await olt_cli.load_candidate(PROVISION)
    assert (await olt_cli.compare()).empty
    assert not (await olt_cli.commit()).changed


async def test_compare_shows_only_what_is_missing_with_its_section(
        olt_lab: Lab, olt_cli: CliDriver) -> None:
    olt_lab.olt.add_ont(SERIAL, "0/1/0")
    await olt_cli.load_candidate(PROVISION)
    await olt_cli.commit()
    await olt_cli.load_candidate([*PROVISION[:3], "ont port native-vlan 0 1 eth 2 vlan 20",
                                  "quit"])
    assert (await olt_cli.compare()).lines == (
        "  interface gpon 0/1", "+ ont port native-vlan 0 1 eth 2 vlan 20", "  quit")
    await olt_cli.discard()
    assert (await olt_cli.compare()).empty


async def test_refused_line_stops_the_batch(olt_lab: Lab, olt_cli: CliDriver) -> None:
    olt = olt_lab.olt
    olt.add_ont(SERIAL, "0/1/0")
    await olt_cli.load_candidate([*PROVISION[:4], "interface gpon 0/1",
                                  "ont port native-vlan 0 1 eth 2 vlan 20", "quit"])
    await olt_cli.commit()
    batch = [service(1, 100), service(2, 999, c_vlan=20, gem=1002), service(3, 200, c_vlan=20,
                                                                           gem=1002)]
    await olt_cli.load_candidate(batch)
    with pytest.raises(CliRejectedError) as info:
        await olt_cli.commit()
    err = info.value
    assert (err.line_no, err.line) == (2, batch[1])
    assert "Failure: The VLAN does not exist: S-VLAN 999 is not on any uplink" in err.output
    assert "line 2" in str(err)
    # Line 1 stays applied (a CLI has no transaction); line 3 was never sent.
    assert sorted(olt.service_port_ids.values()) == [1]
    assert [s.s_vlan for s in olt.view.services.values()] == [100]
    # The session is still usable, back out of config mode; the candidate is kept.
    assert olt_cli.connected
    assert olt_cli.prompt == "OLT1#"
    assert olt_cli.candidate == batch


async def test_unknown_command_stops_the_batch(olt_lab: Lab, olt_cli: CliDriver) -> None:
    olt = olt_lab.olt
    second = "SLNK0000AB02"
    batch = ["interface gpon 0/1", f"ont addd 0 2 sn-auth {second}",
             f"ont add 0 2 sn-auth {second} omci ont-lineprofile-id 10 ont-srvprofile-id 20",
             "quit"]
    await olt_cli.load_candidate(batch)
    with pytest.raises(CliRejectedError) as info:
        await olt_cli.commit()
    assert info.value.line_no == 2
    assert "% Unknown command, the error locates at '^'" in info.value.output
    assert olt.view.onu_by_serial(second) is None  # line 3 was not sent
    assert olt_cli.prompt == "OLT1#"


async def test_save_makes_running_the_startup_config(olt_lab: Lab, olt_cli: CliDriver) -> None:
    olt = olt_lab.olt
    olt.add_ont(SERIAL, "0/1/0")
    await olt_cli.load_candidate(PROVISION)
    await olt_cli.commit()
    assert olt.unsaved
    out = await olt_cli.save()
    assert "Configuration file had been saved successfully" in out
    assert not olt.unsaved


async def test_pager_is_answered_when_paging_stays_on(olt_lab: Lab, huawei: Platform) -> None:
    olt = olt_lab.olt
    paged = huawei.model_copy(update={"paging": Paging(disable=[], prompt=huawei.paging.prompt,
                                                       key=" ")})
    _add_autofind_onts(olt, 4)
    provision_netconf(olt)  # and some configuration, so current-configuration is long too
    await eventually(lambda: len(olt.autofind()) == 4)
    async with CliDriver(olt_lab.target(), paged) as cli:
        whole = await cli.exec("display ont autofind all")
        out = await cli.send_command("display ont autofind all")
        assert cli.channel.pages_answered >= 1
        assert MORE not in out
        assert out.split("\n") == whole.rstrip("\n").split("\n")
        config = (await cli.get_config()).data
        assert config == (await cli.exec("display current-configuration")).rstrip(
            "\n").split("\n")
        assert cli.prompt == "OLT1>"


async def test_commit_refuses_what_a_cli_cannot_do(olt_cli: CliDriver) -> None:
    with pytest.raises(UnsupportedError):
        await olt_cli.load_candidate(["sysname X"], replace=True)
    await olt_cli.load_candidate(["display version"])
    with pytest.raises(UnsupportedError):
        await olt_cli.commit(confirm_timeout=60)
    with pytest.raises(UnsupportedError):
        await olt_cli.confirm()
    with pytest.raises(UnsupportedError):
        await olt_cli.rollback()
    with pytest.raises(ValueError, match="control character"):
        await olt_cli.load_candidate(["display version\nquit"])
    with pytest.raises(ValueError, match="control character"):
        await olt_cli.send_command("display version\x03")
    assert olt_cli.connected  # refused before anything was sent
    await olt_cli.discard()
    assert olt_cli.candidate == []


# ---- gateway -------------------------------------------------------------------------------
async def test_gateway_uci_set_commit_get(gw_lab: Lab, openwrt: Platform) -> None:
    gw = gw_lab.gateway
    line = f"uci set ponctl.analytics.phan_url='{URL}'"
    async with CliDriver(gw_lab.target(user="root"), openwrt) as cli:
        assert cli.prompt == "root@gw1:~#"
        await cli.load_candidate([line])
        assert (await cli.compare()).lines == ("+ " + line,)
        assert (await cli.commit()).changed
        assert gw.phan_url == URL
        assert (await cli.get_state("uci get ponctl.analytics.phan_url")).data == URL
        assert f"ponctl.analytics.phan_url='{URL}'" in (await cli.get_config()).data
        await cli.load_candidate([line])
        assert (await cli.compare()).empty


async def test_gateway_refused_value_reverts_the_staged_batch(gw_lab: Lab,
                                                              openwrt: Platform) -> None:
    gw = gw_lab.gateway
    batch = [f"uci set ponctl.analytics.phan_url='{URL}'", "uci set ponctl.wan.vlan=5000",
             "uci set ponctl.wan.vlan=7"]
    async with CliDriver(gw_lab.target(user="root"), openwrt) as cli:
        await cli.load_candidate(batch)
        with pytest.raises(CliRejectedError) as info:
            await cli.commit()
        assert info.value.line_no == 2
        assert info.value.output == "uci: Invalid argument"
        assert await cli.send_command("uci changes") == ""  # the abort command ran
        assert (gw.phan_url, gw.wan_vlan) == ("", 0)


async def test_gateway_refused_commit_reverts_the_staged_batch(gw_lab: Lab,
                                                               openwrt: Platform) -> None:
    gw = gw_lab.gateway
    gw.faults.refuse_commit = "flash is read-only"
    async with CliDriver(gw_lab.target(user="root"), openwrt) as cli:
        await cli.load_candidate([f"uci set ponctl.analytics.phan_url='{URL}'"])
        with pytest.raises(CliRejectedError) as info:
            await cli.commit()
        assert (info.value.line_no, info.value.line) == (2, "uci commit")
        assert info.value.output == "uci: I/O error (flash is read-only)"
        assert await cli.send_command("uci changes") == ""
        assert gw.phan_url == ""


# ---- events --------------------------------------------------------------------------------
async def test_events_poll_sees_an_ont_plugged_in(olt_lab: Lab, olt_cli: CliDriver,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    olt = olt_lab.olt
    polls = 0
    autofind = olt.autofind

    def counted() -> list[Ont]:
        nonlocal polls
        polls += 1
        return autofind()

    monkeypatch.setattr(olt, "autofind", counted)  # to see when the baseline poll has run

    async def plug_in_later() -> None:
        await eventually(lambda: polls >= 1)
        olt.add_ont(SERIAL, "0/2/0")

    async with (contextlib.aclosing(olt_cli.events(interval=0.05)) as events,
                asyncio.timeout(10), asyncio.TaskGroup() as tg):
        tg.create_task(plug_in_later())
        event = await anext(events)
    assert event.kind == "poll-changed"
    assert event.host == "127.0.0.1"
    assert event.fields == {"command": "display ont autofind all"}
    assert isinstance(event.raw, str)
    assert "SLNK-0000AB01" in event.raw
    # The session is still the driver's: polling left it usable.
    assert "VERSION" in await olt_cli.send_command("display version")


# ---- faults --------------------------------------------------------------------------------
async def test_wrong_password_and_wrong_credentials(olt_lab: Lab, huawei: Platform) -> None:
    cli = CliDriver(olt_lab.target(password="not-the-password"), huawei)
    with pytest.raises(AuthenticationError):
        await cli.connect()
    assert not cli.connected
    olt_lab.olt.faults.wrong_credentials = True
    with pytest.raises(AuthenticationError):
        await CliDriver(olt_lab.target(), huawei).connect()
    assert olt_lab.olt.session_closers == {}


async def test_host_key_mismatch(olt_lab: Lab, huawei: Platform) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    sessions = olt_lab.olt.session_ids
    with pytest.raises(HostKeyError):
        await CliDriver(olt_lab.target(key=other), huawei).connect()
    assert olt_lab.olt.session_ids == sessions  # no session was opened


async def test_latency_past_the_command_timeout(olt_lab: Lab, huawei: Platform) -> None:
    olt = olt_lab.olt
    quick = huawei.model_copy(update={"timeout": 0.2})
    cli = CliDriver(olt_lab.target(), quick)
    await cli.connect()
    olt.faults.latency = 0.6
    with pytest.raises(DriverTimeoutError) as info:
        await cli.send_command("display version")
    assert "display version" in str(info.value)
    assert isinstance(info.value, TimeoutError)
    assert not cli.connected
    with pytest.raises(SessionLostError):
        await cli.send_command("display version")
    await eventually(lambda: olt.session_closers == {}, timeout=5)  # nothing left open
    await cli.close()  # idempotent


async def test_cancelled_command_leaves_nothing_open(olt_lab: Lab, olt_cli: CliDriver) -> None:
    olt = olt_lab.olt
    olt.faults.latency = 0.5
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):  # the caller's own deadline, not the driver's
            await olt_cli.send_command("display version")
    assert not olt_cli.connected  # the reply is still coming: the session is out of step
    await eventually(lambda: olt.session_closers == {})
    olt.faults.latency = 0
    await olt_cli.reconnect()
    assert "VERSION" in await olt_cli.send_command("display version")


async def test_drop_after_is_session_lost(olt_lab: Lab, olt_cli: CliDriver) -> None:
    olt = olt_lab.olt
    olt.faults.drop_after = 1  # the session has run "scroll" only
    with pytest.raises(SessionLostError):
        await olt_cli.send_command("display version")
    assert not olt_cli.connected
    olt.faults.drop_after = None
    await olt_cli.reconnect()
    assert olt_cli.prompt == "OLT1>"


async def test_drop_mid_reply_is_session_lost(olt_lab: Lab, olt_cli: CliDriver) -> None:
    olt = olt_lab.olt
    olt.faults.drop_mid_reply = True
    with pytest.raises(SessionLostError) as info:
        await olt_cli.send_command("display version")
    assert "partial reply" in str(info.value)
    assert not olt_cli.connected
    await eventually(lambda: olt.session_closers == {})


async def test_commit_on_a_dropped_session_is_session_lost(olt_lab: Lab,
                                                           olt_cli: CliDriver) -> None:
    olt = olt_lab.olt
    olt.add_ont(SERIAL, "0/1/0")
    await olt_cli.load_candidate(PROVISION)
    olt.faults.drop_after = 3  # scroll, show-running, enable: dropped at "config"
    with pytest.raises(SessionLostError):
        await olt_cli.commit()
    assert not olt_cli.connected
    assert olt.view.onu_by_serial(SERIAL) is None
    assert olt_cli.candidate == PROVISION  # kept for a retry


async def test_closed_port_is_refused(huawei: Platform) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = SshTarget("127.0.0.1", port, USER, PASSWORD, known_hosts_text="", timeout=5)
    with pytest.raises(RefusedError):
        await CliDriver(target, huawei).connect()


@pytest.fixture
def my_olt_file(tmp_path: Path) -> Path:
    src = Path(load_platform("huawei-olt").source).read_text(encoding="utf-8")
    path = tmp_path / "my-olt.yaml"
    path.write_text(src.replace("name: huawei-olt", "name: my-olt"), encoding="utf-8")
    return path


async def test_platform_file_round_trip(my_olt_file: Path, olt_lab: Lab) -> None:
    """A dialect given as a file path works like a shipped one."""
    path = my_olt_file
    async with CliDriver(olt_lab.target(), load_platform(path)) as cli:
        assert cli.capabilities.details == ("platform=my-olt",)
        assert "VERSION" in (await cli.get_state("display version")).data
