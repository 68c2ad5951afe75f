"""Gateway profiles: the PHAN URL written to simulated gateways over each protocol."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.intent import GatewayIntent, IntentError
from agent.profiles import ProfileError, load_profile, parse_profile
from agent.render import render_gateway, render_gateway_clear
from drivers.base import Driver
from drivers.cli import CliDriver, load_platform
from drivers.netconf import NetconfDriver
from drivers.snmp import SnmpDriver, SnmpTarget
from drivers.ssh_transport import SshTarget
from simulator.devices import Gateway
from simulator.lab import Lab

URL = "https://analytics.example.net/phan/AbCd_123-x"
# The lab's gateways: SIML0000A001's speaks NETCONF, A002's SNMP (both in service at start),
# A005's SSH (its ONT is configured but powered off at start).
CASES = [("sim-gw-netconf", "gw-siml0000a001"), ("sim-gw-snmp", "gw-siml0000a002"),
         ("sim-gw-ssh", "gw-siml0000a005")]


def driver(lab: Lab, gw: Gateway, profile: str) -> Driver[Any]:
    if profile == "sim-gw-snmp":
        return SnmpDriver(SnmpTarget("127.0.0.1", gw.ports["snmp"], version="v2c",
                                     community=gw.snmp.community_rw, timeout=3, retries=1))
    face = "netconf" if profile == "sim-gw-netconf" else "ssh"
    key = lab.host_keys[gw.name].export_public_key().decode().strip()
    target = SshTarget("127.0.0.1", gw.ports[face], gw.credentials.username,
                       gw.credentials.password,
                       known_hosts_text=f"[127.0.0.1]:{gw.ports[face]} {key}\n")
    if face == "netconf":
        return NetconfDriver(target)
    return CliDriver(target, load_platform("openwrt-uci"))


@pytest.mark.parametrize(("profile", "name"), CASES, ids=[c[0] for c in CASES])
async def test_phan_url_is_written_read_back_and_cleared(lab: Lab, profile: str,
                                                         name: str) -> None:
    gw = lab.gateways[name]
    if not gw.reachable:
        lab.find_ont(gw.ont_serial).set_power(True)
        async with asyncio.timeout(5):
            await lab.wait_gateway(name, up=True)
    prof = load_profile(profile)
    intent = GatewayIntent(name, URL, 100)
    async with driver(lab, gw, profile) as dev:
        await dev.load_candidate(render_gateway(prof, intent))
        assert not (await dev.compare()).empty
        await dev.commit()
        assert (gw.phan_url, gw.wan_vlan) == (URL, 100)
        await dev.load_candidate(render_gateway(prof, intent))
        assert (await dev.compare()).empty  # resend writes nothing
        await dev.discard()
        await dev.load_candidate(render_gateway_clear(prof, name))
        await dev.commit()
        assert gw.phan_url == ""


@pytest.mark.parametrize("url", [
    "http://analytics.example.net/p", "https://a.example/p?x=1", "https://a.example/p'; reboot",
    "https://a.example/<x/>", "https://a.example/p\nuci commit", "https://" + "a" * 260,
])
def test_gateway_intent_refuses_what_could_inject(url: str) -> None:
    with pytest.raises(IntentError, match="PHAN URL"):
        GatewayIntent("gw1", url)


def test_profile_kind_decides_the_templates() -> None:
    templates = {"gateway": "<a/>", "clear_gateway": "<a/>"}
    gw: dict[str, Any] = {"name": "x", "kind": "gateway", "protocol": "netconf",
                          "templates": templates}
    assert parse_profile(gw, "x.yaml").kind == "gateway"
    with pytest.raises(ProfileError, match=r"templates\.clear_gateway: a gateway profile needs it"):
        parse_profile({**gw, "templates": {"gateway": "<a/>"}}, "x.yaml")
    with pytest.raises(ProfileError, match=r"templates\.ont: not used by a gateway profile"):
        parse_profile({**gw, "templates": {**templates, "ont": "<a/>"}}, "x.yaml")
