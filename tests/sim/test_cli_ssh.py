"""The CLI face through the real OpenSSH client: host keys, logins, exec, shells, faults.

OpenSSH (``/usr/bin/ssh``) shares no code with the server, so these tests see what a field
engineer's terminal or a driver would. ``sshpass`` types the password; each client runs as a
subprocess so the server keeps running on this test's event loop.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from simulator.cli import CliServer
from simulator.cli.terminal import MORE
from simulator.devices import Gateway, Olt, OntState
from tests.sim.cli_helpers import (
    PASSWORD,
    SERIAL,
    USER,
    make_gateway,
    make_olt,
    provision_netconf,
    wait_for,
)

pytestmark = pytest.mark.skipif(
    shutil.which("ssh") is None or shutil.which("sshpass") is None,
    reason="needs the OpenSSH client and sshpass (apt-get install -y openssh-client sshpass)")

CLIENT_TIMEOUT = 20.0
URL = "https://phan.example.net/l/7f3a9c"


@dataclass
class Lab:
    device: Olt | Gateway
    server: CliServer
    key: asyncssh.SSHKey
    tmp: Path

    def known_hosts(self, key: asyncssh.SSHKey | None = None) -> Path:
        path = self.tmp / f"known_hosts-{id(key)}"
        public = (key or self.key).export_public_key().decode().strip()
        path.write_text(f"[127.0.0.1]:{self.server.port} {public}\n")
        return path


@dataclass
class Result:
    rc: int
    out: str
    err: str


def ssh_command(lab: Lab, *args: str, password: str = PASSWORD, user: str = USER,
                known_hosts: Path | None = None) -> list[str]:
    """OpenSSH against the lab server: ``args`` are options, then the command ("" for none)."""
    cmd = ["sshpass", "-p", password, "ssh", "-F", "/dev/null", "-p", str(lab.server.port),
           "-o", "StrictHostKeyChecking=yes",
           "-o", f"UserKnownHostsFile={known_hosts or lab.known_hosts()}",
           "-o", "GlobalKnownHostsFile=/dev/null",
           "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
           "-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=10",
           "-o", "LogLevel=ERROR", *args[:-1], f"{user}@127.0.0.1"]
    return [*cmd, args[-1]] if args[-1] else cmd


async def spawn(cmd: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


async def finish(proc: asyncio.subprocess.Process, stdin: str | None = None) -> Result:
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else b""), CLIENT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    # A PTY sends CRLF line ends.
    return Result(proc.returncode, out.decode().replace("\r\n", "\n"), err.decode())


async def ssh(lab: Lab, *args: str, stdin: str | None = None, password: str = PASSWORD,
              user: str = USER, known_hosts: Path | None = None) -> Result:
    """Run one OpenSSH client to completion, feeding it ``stdin``."""
    cmd = ssh_command(lab, *args, password=password, user=user, known_hosts=known_hosts)
    return await finish(await spawn(cmd), stdin)


async def _start(device: Olt | Gateway, tmp: Path) -> Lab:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return Lab(device, await CliServer.start(device, "127.0.0.1", 0, key), key, tmp)


@pytest.fixture
async def olt_lab(tmp_path: Path) -> AsyncIterator[Lab]:
    lab = await _start(make_olt(), tmp_path)
    yield lab
    await lab.server.close()


@pytest.fixture
async def gw_lab(tmp_path: Path) -> AsyncIterator[Lab]:
    olt = make_olt()
    ont = olt.add_ont(SERIAL, "0/1/0")
    provision_netconf(olt, serial=SERIAL, onu_id=1)  # the gateway's management path
    await wait_for(lambda: bool(ont.applied))
    lab = await _start(make_gateway(olt), tmp_path)
    yield lab
    await lab.server.close()


def _olt(lab: Lab) -> Olt:
    assert isinstance(lab.device, Olt)
    return lab.device


def _gw(lab: Lab) -> Gateway:
    assert isinstance(lab.device, Gateway)
    return lab.device


ONT_ADD = ("ont add 0 1 sn-auth {sn} omci ont-lineprofile-id 10 ont-srvprofile-id 10 "
           'desc "Flat 1, left"')
SERVICE = ("service-port 5 vlan {s} gpon 0/1/0 ont 1 gemport 1001 multi-service user-vlan 10 "
           "tag-transform translate-and-add inner-vlan 10")
REGISTER = ["enable", "config", "interface gpon 0/1", ONT_ADD.format(sn=SERIAL),
            "ont port native-vlan 0 1 eth 1 vlan 10", "quit"]


# ---- OLT: exec ---------------------------------------------------------------------------
async def test_exec_autofind_shows_the_unclaimed_ont(olt_lab: Lab) -> None:
    _olt(olt_lab).add_ont(SERIAL, "0/1/1")
    res = await ssh(olt_lab, "display ont autofind all")
    assert res.rc == 0, res.err
    assert "Ont SN              : 534C4E4B0000AB01 (SLNK-0000AB01)" in res.out
    assert "F/S/P               : 0/1/1" in res.out
    assert "The number of GPON autofind ONT is 1" in res.out
    assert MORE not in res.out  # exec output is never paged


async def test_exec_runs_lines_and_stops_at_a_failure(olt_lab: Lab) -> None:
    olt = _olt(olt_lab)
    ont = olt.add_ont(SERIAL, "0/1/0")
    res = await ssh(olt_lab, "\n".join(REGISTER))
    assert res.rc == 0, res.out + res.err
    await wait_for(lambda: ont.state == OntState.OPERATIONAL)
    before = olt.running
    res = await ssh(olt_lab, "\n".join(
        ["enable", "config", SERVICE.format(s=999), "display version"]))
    assert res.rc == 1
    assert "Failure: The VLAN does not exist: S-VLAN 999 is not on any uplink" in res.out
    assert "VERSION" not in res.out  # nothing after the failing line ran
    assert olt.running is before
    assert not ont.applied


async def test_exec_unknown_command_shows_the_caret(olt_lab: Lab) -> None:
    res = await ssh(olt_lab, "display ont autofnd all")
    assert res.rc == 1
    assert res.out == " " * 12 + "^\n  % Unknown command, the error locates at '^'\n"


# ---- OLT: interactive --------------------------------------------------------------------
async def test_interactive_provisioning_with_a_pty(olt_lab: Lab) -> None:
    olt = _olt(olt_lab)
    ont = olt.add_ont(SERIAL, "0/1/0")
    lines = [*REGISTER, SERVICE.format(s=100), "display service-port all", "save", "quit",
             "quit"]
    res = await ssh(olt_lab, "-tt", "", stdin="\n".join(lines) + "\n")
    assert res.rc == 0, res.err
    out = res.out
    # The PTY echoes each line after its prompt, and every prompt is Huawei's.
    for prompt, line in [("OLT1>", "enable"), ("OLT1#", "config"),
                         ("OLT1(config)#", "interface gpon 0/1"),
                         ("OLT1(config-if-gpon-0/1)#", ONT_ADD.format(sn=SERIAL)),
                         ("OLT1(config)#", SERVICE.format(s=100)), ("OLT1(config)#", "save"),
                         ("OLT1#", "quit")]:
        assert f"\n{prompt}{line}\n" in out, (prompt, line)
    assert "Number of ONTs that can be added: 1, success: 1" in out
    assert "Configuration file had been saved successfully" in out
    row = re.search(r"\n +5 +100 common +gpon 0/1 /0 +1 +1001 +vlan +10 ", out)
    assert row is not None, out
    await wait_for(lambda: ont.state == OntState.OPERATIONAL and bool(ont.applied))
    (svc,) = ont.applied.values()
    assert (svc.c_vlan, svc.s_vlan, svc.uni) == (10, 100, 1)
    assert not olt.unsaved
    res = await ssh(olt_lab, "display service-port all")
    assert re.search(r"\n +5 +100 .* up\n", res.out), res.out


async def test_interactive_without_a_pty(olt_lab: Lab) -> None:
    res = await ssh(olt_lab, "-T", "", stdin="enable\r\nconfig\ndisplay  ontt\nreturn\nquit\n")
    assert res.rc == 0, res.err
    assert res.out.startswith("\n  SimuLight Integrated Access Software (SL-OLT16).")
    # No echo: each prompt is followed by the newline the server writes for Enter.
    assert "\nOLT1>\n\nOLT1#\n\nOLT1(config)#\n" in res.out
    caret = " " * len("OLT1(config)#display  ") + "^\n  % Unknown command"
    assert caret in res.out
    assert res.out.endswith("OLT1(config)#\n\nOLT1#\n")


async def test_paging_and_screen_length(olt_lab: Lab) -> None:
    olt = _olt(olt_lab)
    for n in range(4):  # 4 autofind entries: about 40 lines, two screens
        olt.add_ont(f"SLNK0000AC0{n}", "0/1/0")
    total = "The number of GPON autofind ONT is 4"
    stdin = ("display ont autofind all\n"  # paged: the space shows the rest
             " "
             "display ont autofind all\n"  # paged: q breaks off
             "q"
             "screen-length 0 temporary\n"
             "display ont autofind all\n"  # not paged
             "quit\n")
    res = await ssh(olt_lab, "-T", "", stdin=stdin)
    assert res.rc == 0, res.err
    parts = res.out.split("OLT1>\n")  # each command's answer follows a prompt and its Enter
    first, second, third = parts[1], parts[2], parts[4]
    assert parts[3] == "\n"  # screen-length says nothing
    assert MORE in first
    assert total in first
    assert MORE in second
    assert total not in second
    assert "SLNK-0000AC03" not in second
    assert MORE not in third
    assert total in third


# ---- OLT: what NETCONF made ---------------------------------------------------------------
async def test_netconf_service_shows_up_in_the_cli(olt_lab: Lab) -> None:
    olt = _olt(olt_lab)
    svc = provision_netconf(olt, name="internet-sub-42")
    res = await ssh(olt_lab, "display service-port all\ndisplay current-configuration")
    assert res.rc == 0, res.err
    index = olt.service_port_ids["internet-sub-42"]
    assert re.search(rf"\n +{index} +200 common +gpon 0/1 /0 +7 +{svc.gemport_id} +vlan +20 ",
                     res.out), res.out
    assert (f"\n service-port {index} vlan 200 gpon 0/1/0 ont 7 gemport {svc.gemport_id} "
            "multi-service user-vlan 20") in res.out
    assert '\n ont add 0 7 sn-auth "534C4E4B0000AB07"' in res.out


# ---- OLT: security and faults --------------------------------------------------------------
async def test_host_key_mismatch_is_refused_by_openssh(olt_lab: Lab) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    sessions = _olt(olt_lab).session_ids
    res = await ssh(olt_lab, "display version", known_hosts=olt_lab.known_hosts(other))
    assert res.rc == 255
    assert "Host key verification failed" in res.err
    assert res.out == ""
    assert _olt(olt_lab).session_ids == sessions


async def test_wrong_password_and_wrong_credentials_fault(olt_lab: Lab) -> None:
    res = await ssh(olt_lab, "display version", password="not-the-password")
    assert res.rc != 0
    assert res.out == ""
    _olt(olt_lab).faults.wrong_credentials = True
    res = await ssh(olt_lab, "display version")
    assert res.rc != 0
    assert res.out == ""
    _olt(olt_lab).faults.wrong_credentials = False
    assert (await ssh(olt_lab, "display version")).rc == 0


async def test_drop_after_closes_the_session(olt_lab: Lab) -> None:
    olt = _olt(olt_lab)
    olt.faults.drop_after = 2
    res = await ssh(olt_lab, "-T", "", stdin="enable\nconfig\ndisplay version\nquit\n")
    assert res.rc == 255  # closed by the remote host
    assert "OLT1(config)#" in res.out
    assert "VERSION" not in res.out
    assert olt.session_closers == {}


async def test_drop_mid_reply_cuts_the_answer(olt_lab: Lab) -> None:
    olt = _olt(olt_lab)
    olt.add_ont(SERIAL, "0/1/0")
    full = (await ssh(olt_lab, "display ont autofind all")).out
    olt.faults.drop_mid_reply = True
    res = await ssh(olt_lab, "display ont autofind all")
    assert res.rc == 255
    assert res.out == full[:len(full) // 2]


async def test_latency_delays_each_reply(olt_lab: Lab) -> None:
    _olt(olt_lab).faults.latency = 0.3
    t = time.monotonic()
    res = await ssh(olt_lab, "display version\ndisplay version")
    assert res.rc == 0
    assert time.monotonic() - t >= 0.6


async def test_reboot_drops_the_session(olt_lab: Lab) -> None:
    olt = _olt(olt_lab)
    proc = await spawn(ssh_command(olt_lab, "-T", ""))  # a shell left open: stdin stays open
    await wait_for(lambda: bool(olt.session_closers), timeout=10)
    olt.reboot()
    res = await finish(proc)
    assert res.rc == 255
    assert "OLT1>" in res.out


# ---- gateway -----------------------------------------------------------------------------
async def test_gateway_uci_set_commit_get(gw_lab: Lab) -> None:
    gw = _gw(gw_lab)
    res = await ssh(gw_lab, f"uci set ponctl.analytics.phan_url='{URL}'\nuci changes",
                    user="root")
    assert res.rc == 0, res.err
    assert res.out == f"ponctl.analytics.phan_url='{URL}'\n"
    assert gw.phan_url == ""  # never committed: the change died with the session
    res = await ssh(gw_lab, f"uci set ponctl.analytics.phan_url='{URL}'; "
                            "uci set ponctl.wan.vlan=100 && uci commit ponctl\n"
                            "uci get ponctl.analytics.phan_url", user="root")
    assert res.rc == 0, res.err
    assert res.out == URL + "\n"
    assert (gw.phan_url, gw.wan_vlan) == (URL, 100)


async def test_gateway_refuses_bad_values_and_unknown_commands(gw_lab: Lab) -> None:
    gw = _gw(gw_lab)
    res = await ssh(gw_lab, "uci set ponctl.wan.vlan=5000", user="root")
    assert (res.rc, res.out) == (1, "uci: Invalid argument\n")
    res = await ssh(gw_lab, "ifconfig", user="root")
    assert (res.rc, res.out) == (127, "-ash: ifconfig: not found\n")
    assert gw.wan_vlan == 0


async def test_gateway_interactive_shell(gw_lab: Lab) -> None:
    res = await ssh(gw_lab, "-tt", "", user="root",
                    stdin="uci set ponctl.wan.vlan=42\nuci commit ponctl\nuci show ponctl.wan\n"
                          "exit\n")
    assert res.rc == 0, res.err
    assert "BusyBox" in res.out
    assert "root@gw1:~# uci set ponctl.wan.vlan=42\n" in res.out
    assert "ponctl.wan=wan\nponctl.wan.vlan='42'\n" in res.out
    assert _gw(gw_lab).wan_vlan == 42


async def test_unreachable_gateway_accepts_no_connection(gw_lab: Lab) -> None:
    gw = _gw(gw_lab)
    gw.olt.onts[SERIAL].set_power(False)
    assert not gw.reachable
    res = await ssh(gw_lab, "uci show", user="root")
    assert res.rc == 255
    assert res.out == ""


async def test_subsystems_are_refused(olt_lab: Lab) -> None:
    res = await ssh(olt_lab, "-s", "netconf")
    assert res.rc == 1
    assert "not offered" in res.err


async def test_close_ends_open_sessions(tmp_path: Path) -> None:
    lab = await _start(make_olt(), tmp_path)
    proc = await spawn(ssh_command(lab, "-T", ""))
    await wait_for(lambda: bool(_olt(lab).session_closers), timeout=10)
    await lab.server.close()
    res = await finish(proc)
    assert res.rc == 255
    assert _olt(lab).session_closers == {}
