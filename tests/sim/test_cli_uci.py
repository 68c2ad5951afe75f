"""The gateway's ash + uci shell, line by line, without SSH."""

from __future__ import annotations

import pytest

from simulator.cli.uci import UciShell
from tests.sim.cli_helpers import make_gateway, make_olt

URL = "https://phan.example.net/l/7f3a9c"


def _shell() -> UciShell:
    return UciShell(make_gateway(make_olt()))


def test_prompt_and_banner() -> None:
    sh = _shell()
    assert sh.prompt == "root@gw1:~# "
    assert "BusyBox" in sh.banner


def test_set_stages_and_commit_applies() -> None:
    sh = _shell()
    gw = sh.gateway
    assert sh.handle(f"uci set ponctl.analytics.phan_url='{URL}'").ok
    assert gw.phan_url == ""  # staged only
    assert sh.handle("uci changes ponctl").output == f"ponctl.analytics.phan_url='{URL}'\n"
    assert sh.handle("uci get ponctl.analytics.phan_url").output == URL + "\n"
    assert sh.handle("uci set ponctl.wan.vlan=100").ok
    assert sh.handle("uci commit ponctl").ok
    assert (gw.phan_url, gw.wan_vlan) == (URL, 100)
    assert sh.handle("uci changes").output == ""
    assert sh.handle("uci show ponctl").output == (
        f"ponctl.analytics=analytics\nponctl.analytics.phan_url='{URL}'\n"
        "ponctl.wan=wan\nponctl.wan.vlan='100'\n")
    assert sh.handle("uci show ponctl.wan.vlan").output == "ponctl.wan.vlan='100'\n"


def test_changes_belong_to_the_session() -> None:
    gw = make_gateway(make_olt())
    one, two = UciShell(gw), UciShell(gw)
    one.handle(f"uci set ponctl.analytics.phan_url={URL}")
    assert two.handle("uci changes").output == ""
    assert not two.handle("uci get ponctl.analytics.phan_url").ok
    assert two.handle("uci commit ponctl").ok
    assert gw.phan_url == ""


def test_revert_and_delete() -> None:
    sh = _shell()
    sh.gateway.set(phan_url=URL)
    sh.handle("uci set ponctl.wan.vlan=7")
    sh.handle("uci revert ponctl")
    assert sh.handle("uci changes").output == ""
    sh.handle("uci delete ponctl.analytics.phan_url")
    assert sh.handle("uci changes").output == "-ponctl.analytics.phan_url\n"
    assert sh.handle("uci -q get ponctl.analytics.phan_url").output == ""
    sh.handle("uci commit")
    assert sh.gateway.phan_url == ""


@pytest.mark.parametrize("line", [
    "uci set ponctl.wan.vlan=5000",
    "uci set ponctl.wan.vlan=abc",
    "uci set ponctl.wan.vlan=",
    "uci set ponctl.analytics.phan_url=ftp://x",
    "uci set 'ponctl.analytics.phan_url=https://a b'",
    "uci set ponctl.analytics.other=1",
    "uci set ponctl.analytics.phan_url",
    "uci frobnicate",
])
def test_bad_values_are_invalid_arguments(line: str) -> None:
    sh = _shell()
    reply = sh.handle(line)
    assert (reply.output, reply.status) == ("uci: Invalid argument\n", 1)
    assert sh.staged == {}


def test_missing_entries() -> None:
    sh = _shell()
    for line in ("uci get ponctl.analytics.phan_url", "uci get network.lan.ipaddr",
                 "uci show network", "uci set network.lan.proto=dhcp"):
        assert sh.handle(line).output == "uci: Entry not found\n", line
    assert sh.handle("uci get ponctl.wan").output == "wan\n"


def test_refused_commit_keeps_the_change_staged() -> None:
    sh = _shell()
    sh.gateway.faults.refuse_commit = "flash is read-only"
    sh.handle(f"uci set ponctl.analytics.phan_url={URL}")
    reply = sh.handle("uci commit ponctl")
    assert (reply.output, reply.status) == ("uci: I/O error (flash is read-only)\n", 1)
    assert sh.gateway.phan_url == ""
    assert sh.staged


def test_shell_lists_and_unknown_commands() -> None:
    sh = _shell()
    assert sh.handle("foo --bar").output == "-ash: foo: not found\n"
    assert sh.handle("foo").status == 127
    assert sh.handle("false && echo no || echo yes; echo done").output == "yes\ndone\n"
    assert sh.handle("uci set ponctl.wan.vlan=x && echo no").output == "uci: Invalid argument\n"
    assert sh.handle("echo 'unterminated").status == 2
    assert sh.handle("echo a | cat").status == 2
    assert sh.handle("exit").close
