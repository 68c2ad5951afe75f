"""Device profiles render intents into each protocol's payload, and the payloads provision.

Pure tests render every profile and validate the NETCONF rendering against the BBF YANG
modules; integration tests push the renderings to a simulated lab over real sockets (NETCONF,
SNMP and the SSH CLI), resend them (nothing changes) and remove them again.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from agent.intent import BandwidthProfile, IntentError, OntIntent, ServiceIntent
from agent.profiles import Profile, ProfileError, load_profile, parse_profile
from agent.render import (
    RenderError,
    render,
    render_ont,
    render_ont_removal,
    render_removal,
    render_service,
)
from drivers.base import Driver
from drivers.cli import CliDriver, load_platform
from drivers.netconf import NetconfDriver
from drivers.snmp import SnmpDriver, SnmpTarget, Varbind
from drivers.ssh_transport import SshTarget
from simulator.config.tree import root_to_xml
from simulator.devices import Credentials, Olt, OntState, SnmpSettings
from simulator.lab import Lab
from tests.conftest import SHARED, eventually

PROFILES = ["sim-olt-netconf", "sim-olt-snmp", "sim-olt-cli"]
VALIDATE_BBF = SHARED / "tools" / "validate-bbf"
SERIAL, PORT, ONU_ID = "HWTC1A2B3C4D", "0/1/1", 3  # unclaimed on olt1 when the lab starts
VANI = f"ont-{PORT}-{ONU_ID}"
ONT = OntIntent("olt1", SERIAL, PORT, ONU_ID, "12 Fibre Lane, flat 3")
SVC = ServiceIntent("ord-1042-internet", ONT, uni=1, c_vlan=100, s_vlan=1004, uplink="0/9/0",
                    profile=BandwidthProfile("tdp-100M", 100_000_000), gemport_id=2001,
                    alloc_id=2001)


def xml_of(payload: Any) -> str:
    assert isinstance(payload, str)
    return payload


def parse_config(xml: str) -> list[etree._Element]:
    return list(etree.fromstring(f"<config>{xml}</config>"))


def bare_olt() -> Olt:
    """An OLT as shipped (PON ports and uplinks, nothing provisioned), off the network."""
    return Olt("olt1", "127.0.0.1", Credentials("admin", "admin"),
               SnmpSettings("public", "private", "ponctl", "authkey123", "privkey123"),
               frozenset({"netconf"}), ["0/1/0", "0/1/1"],
               {"0/9/0": frozenset(range(1000, 1010))})


# ---- pure -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_renders_every_template(name: str) -> None:
    profile = load_profile(name)
    for payload in (render_ont(profile, ONT), render_service(profile, SVC),
                    render_removal(profile, SVC, with_ont=False),
                    render_removal(profile, SVC, with_ont=True),
                    render_ont_removal(profile, ONT), render(profile, ONT, [SVC])):
        assert payload
        if profile.protocol == "netconf":
            assert parse_config(xml_of(payload))
        elif profile.protocol == "snmp":
            assert isinstance(payload, list)
            assert all(isinstance(vb, Varbind) for vb in payload)
        else:
            assert isinstance(payload, list)
            assert all(isinstance(line, str) and "\n" not in line for line in payload)


def test_cli_lines_are_spelled_as_the_olt_prints_them() -> None:
    lines = render(load_profile("sim-olt-cli"), ONT, [SVC])
    assert lines == [
        "interface gpon 0/1",
        'ont add 1 3 sn-auth "485754431A2B3C4D" omci ont-lineprofile-id 10 '
        'ont-srvprofile-id 10 desc "12 Fibre Lane, flat 3"',
        "quit",
        "interface gpon 0/1",
        "ont port native-vlan 1 3 eth 1 vlan 100",
        "quit",
        "service-port 9740 vlan 1004 gpon 0/1/1 ont 3 gemport 2001 multi-service user-vlan 100 "
        "tag-transform translate-and-add inner-vlan 100 inbound traffic-table name tdp-100M "
        "outbound traffic-table name tdp-100M",
    ]
    assert render_removal(load_profile("sim-olt-cli"), SVC, with_ont=True) == [
        "undo service-port 9740", "interface gpon 0/1", "ont delete 1 3", "quit"]


def test_netconf_batches_several_onts_into_one_config() -> None:
    profile = load_profile("sim-olt-netconf")
    other = OntIntent("olt1", "ALCLB2C3D4E5", PORT, 4)
    other_svc = dataclasses.replace(SVC, name="ord-1043-internet", ont=other, gemport_id=2002,
                                    alloc_id=2002)
    olt = bare_olt()
    olt.edit_config("running", parse_config(xml_of(render(profile, [ONT, other],
                                                          [SVC, other_svc]))), session=1)
    assert {s.vani for s in olt.view.services.values()} == {VANI, f"ont-{PORT}-4"}


@pytest.mark.skipif(shutil.which("yanglint") is None,
                    reason="yanglint not installed (apt-get install libyang2-tools)")
@pytest.mark.skipif(not VALIDATE_BBF.exists(),
                    reason="../shared/tools/validate-bbf is not beside the repo")
def test_netconf_rendering_validates_against_the_bbf_models(tmp_path: Path) -> None:
    profile = load_profile("sim-olt-netconf")
    olt = bare_olt()
    olt.edit_config("running", parse_config(xml_of(render(profile, ONT, [SVC]))), session=1)
    [svc] = olt.view.services_of(VANI)
    assert (svc.uni, svc.c_vlan, svc.s_vlan, svc.uplink, svc.gemport_id, svc.alloc_id,
            svc.profile) == (1, 100, 1004, "0/9/0", 2001, 2001, "tdp-100M")
    doc = tmp_path / "running.xml"
    doc.write_bytes(b"".join(etree.tostring(c) for c in root_to_xml(olt.running, "data")))
    proc = subprocess.run([str(VALIDATE_BBF), str(doc)], check=False, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr

    olt.edit_config("running", parse_config(xml_of(render_removal(profile, SVC, False))),
                    session=1)
    assert not olt.view.services_of(VANI)
    assert VANI in olt.view.onus
    olt.edit_config("running", parse_config(xml_of(render_ont_removal(profile, ONT))),
                    session=1)
    assert VANI not in olt.view.onus


# ---- injection ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ['x"><evil/>', "a\nundo service-port 1", "it's", "a&b",
                                 "a;b", "<x>"])
def test_intents_refuse_markup_quotes_and_newlines(bad: str) -> None:
    with pytest.raises(IntentError):
        OntIntent("olt1", SERIAL, PORT, ONU_ID, bad)
    with pytest.raises(IntentError):
        dataclasses.replace(SVC, name=bad)
    with pytest.raises(IntentError):
        BandwidthProfile(bad, 1000)


def test_autoescaping_neutralises_markup_that_got_past_the_intent() -> None:
    # Build an intent around its validation, as a bug elsewhere might: the XML must still
    # be well-formed and the text must come back unchanged.
    nasty = 'A & B <evil/> "quoted" \'too\''
    ont = OntIntent("olt1", SERIAL, PORT, ONU_ID)
    object.__setattr__(ont, "description", nasty)
    [ifs, _links] = parse_config(xml_of(render_ont(load_profile("sim-olt-netconf"), ont)))
    ns = {"if": "urn:ietf:params:xml:ns:yang:ietf-interfaces"}
    assert ifs.findtext("if:interface/if:description", namespaces=ns) == nasty
    assert not ifs.findall(".//evil")


# ---- profile loading ------------------------------------------------------------------------
def test_a_bad_profile_is_refused_naming_file_field_and_reason(tmp_path: Path) -> None:
    good = load_profile("sim-olt-cli").model_dump(mode="json")
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "protocol": "telnet"}, "protocol"),
        ({**good, "platform": None}, "needs platform"),
        ({**good, "templates": {**good["templates"], "ont": "{% if %}"}}, "templates.ont"),
        ({**good, "variables": {"x": "1 +"}}, "variables"),
        ({**good, "templates": {**good["templates"], "ont": [
            {"oid": "1.3.6", "type": "Integer", "value": "1"}]}}, "template string"),
    ]
    for data, why in cases:
        with pytest.raises(ProfileError) as err:
            parse_profile(data, "bad.yaml")
        assert str(err.value).startswith("bad.yaml: ")
        assert why in str(err.value)
    path = tmp_path / "broken.yaml"
    path.write_text("protocol: [", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"broken\.yaml: not valid YAML"):
        load_profile(path)
    with pytest.raises(ProfileError, match="no profile 'nope'"):
        load_profile("nope")


def test_an_undefined_variable_is_a_render_error() -> None:
    data = load_profile("sim-olt-cli").model_dump(mode="json")
    data["templates"]["ont"] = "ont add {{ prot }}"
    with pytest.raises(RenderError, match=r"templates\.ont: 'prot' is undefined"):
        render_ont(parse_profile(data, "typo.yaml"), ONT)


# ---- integration over real sockets ----------------------------------------------------------
def ssh_target(lab: Lab, olt: Olt, face: str) -> SshTarget:
    key = lab.host_keys[olt.name].export_public_key().decode().strip()
    port = olt.ports[face]
    return SshTarget("127.0.0.1", port, olt.credentials.username, olt.credentials.password,
                     known_hosts_text=f"[127.0.0.1]:{port} {key}\n", timeout=10.0)


def make_driver(profile: Profile, lab: Lab, olt: Olt) -> Driver[Any]:
    if profile.protocol == "netconf":
        return NetconfDriver(ssh_target(lab, olt, "netconf"))
    if profile.protocol == "snmp":
        return SnmpDriver(SnmpTarget("127.0.0.1", olt.ports["snmp"], version="v2c",
                                     community=olt.snmp.community_rw, timeout=10.0, retries=0))
    assert profile.platform is not None
    return CliDriver(ssh_target(lab, olt, "ssh"), load_platform(profile.platform))


async def push(driver: Driver[Any], payload: Any) -> None:
    await driver.load_candidate(payload)
    await driver.commit()


@pytest.mark.parametrize("name", PROFILES)
async def test_rendered_payload_provisions_resends_idempotently_and_removes(
        name: str, lab: Lab) -> None:
    profile = load_profile(name)
    olt = lab.olts["olt1"]
    ont = olt.onts[SERIAL]
    assert ont.state == OntState.UNCLAIMED
    payload = render(profile, ONT, [SVC])

    def exactly_the_service() -> bool:
        return (ont.state == OntState.OPERATIONAL
                and [(a.c_vlan, a.s_vlan) for a in ont.applied.values()] == [(100, 1004)])

    async with make_driver(profile, lab, olt) as driver:
        await driver.load_candidate(payload)
        assert not (await driver.compare()).empty
        await driver.commit()
        await eventually(exactly_the_service)
        [svc] = olt.view.services_of(VANI)
        assert (svc.uni, svc.c_vlan, svc.s_vlan, svc.uplink, svc.gemport_id, svc.profile) == (
            1, 100, 1004, "0/9/0", 2001, "tdp-100M")
        if profile.protocol == "netconf":  # the other faces pick the alloc-id themselves
            assert svc.alloc_id == 2001
        assert olt.view.onus[VANI].description == ONT.description
        running = olt.running

        await driver.load_candidate(payload)
        assert (await driver.compare()).empty, "resending an applied rendering must change nothing"
        await driver.commit()
        assert olt.running.same(running)

        await push(driver, render_removal(profile, SVC, with_ont=False))
        await eventually(lambda: not ont.applied)
        assert not olt.view.services_of(VANI)
        assert VANI in olt.view.onus  # the ONT stays registered

        await push(driver, payload)  # back again, then everything away in one go
        await eventually(exactly_the_service)
        await push(driver, render_removal(profile, SVC, with_ont=True))
        await eventually(lambda: ont.state == OntState.UNCLAIMED)
        assert not olt.view.services_of(VANI)
        assert VANI not in olt.view.onus


@pytest.mark.parametrize("name", PROFILES)
async def test_removing_a_service_whose_vlans_another_subscriber_shares(lab: Lab,
                                                                        name: str) -> None:
    # SIML0000A001 is in service at start with S-VLAN 1000 / C-VLAN 100 on the same uplink.
    olt = lab.olts["olt1"]
    shared = ServiceIntent("ord-7-internet", ONT, uni=1, c_vlan=100, s_vlan=1000,
                           uplink="0/9/0", profile=SVC.profile, gemport_id=2001, alloc_id=2001)
    profile = load_profile(name)
    async with make_driver(profile, lab, olt) as dev:
        await push(dev, render(profile, ONT, [shared]))
        await eventually(lambda: bool(olt.onts[SERIAL].applied))
        await push(dev, render_removal(profile, shared, with_ont=True))
    assert not olt.view.services_of(VANI)
    neighbour = olt.onts["SIML0000A001"]
    assert [(s.s_vlan, s.c_vlan) for s in neighbour.applied.values()] == [(1000, 100)]
