"""One OLT, three faces, one state: what one face writes, the other two read back.

Each face is driven by an independent real client: OpenSSH for the CLI, ncclient for
NETCONF, net-snmp for SNMP — all against one lab started from configs/lab.yaml.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import ncclient.transport.session
import pytest
from lxml import etree
from ncclient import manager

from simulator.config.namespaces import VANI
from simulator.devices import Olt, OntState
from simulator.lab import Lab
from simulator.netconf.state import OLT_STATE
from tests.sim.snmp_tools import ONT, SERVICE, net_snmp, until

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("ssh", "sshpass", "snmpwalk", "snmpset")),
    reason="needs OpenSSH, sshpass and net-snmp (apt-get install -y openssh-client sshpass snmp)")


@pytest.fixture(autouse=True)
def _fast_ncclient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ncclient.transport.session, "TICK", 0.002)


async def cli(lab: Lab, olt: Olt, tmp_path: Path, *lines: str) -> str:
    """Run CLI lines through the OpenSSH client (exec), checking the host key."""
    known = tmp_path / "known_hosts"
    key = lab.host_keys[olt.name].export_public_key().decode().strip()
    known.write_text(f"[127.0.0.1]:{olt.ports['ssh']} {key}\n")
    proc = await asyncio.create_subprocess_exec(
        "sshpass", "-p", olt.credentials.password, "ssh", "-F", "/dev/null",
        "-p", str(olt.ports["ssh"]), "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known}", "-o", "PubkeyAuthentication=no",
        "-o", "PreferredAuthentications=password", "-o", "LogLevel=ERROR",
        f"{olt.credentials.username}@127.0.0.1", "\n".join(lines),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out.decode() + err.decode()
    return out.decode()


def netconf(olt: Olt) -> Any:
    return manager.connect(host="127.0.0.1", port=olt.ports["netconf"],
                           username=olt.credentials.username, password=olt.credentials.password,
                           hostkey_verify=False, look_for_keys=False, allow_agent=False,
                           timeout=20)


def netconf_view(olt: Olt, serial: str) -> tuple[list[str], list[etree._Element]]:
    """Expected serials in running (get-config) and the ONT's state entry (get)."""
    with netconf(olt) as m:
        running = etree.fromstring(m.get_config("running").data_xml.encode())
        flt = (f'<olt-state xmlns="{OLT_STATE}"><onts><ont><serial>{serial}</serial>'
               '</ont></onts></olt-state>')
        state = etree.fromstring(m.get(filter=("subtree", flt)).data_xml.encode())
    serials = [e.text or "" for e in running.iter(f"{{{VANI}}}expected-serial-number")]
    return serials, state.findall(f".//{{{OLT_STATE}}}ont")


def snmp_args(olt: Olt, community: str) -> list[str]:
    return ["-v2c", "-c", community, "-m", "", "-t", "3", "-r", "1",
            f"udp:127.0.0.1:{olt.ports['snmp']}"]


async def test_cli_service_is_seen_by_netconf_and_snmp(lab: Lab, tmp_path: Path) -> None:
    olt = lab.olts["olt1"]
    serial = "HWTC1A2B3C4D"  # plugged into 0/1/1, unclaimed at start
    out = await cli(lab, olt, tmp_path, "display ont autofind all")
    assert "485754431A2B3C4D (HWTC-1A2B3C4D)" in out  # Huawei shows the SN in hex and text
    await cli(lab, olt, tmp_path, "enable", "config", "interface gpon 0/1",
              f'ont add 1 3 sn-auth {serial} omci ont-lineprofile-id 10 ont-srvprofile-id 10 '
              'desc "via CLI"',
              "ont port native-vlan 1 3 eth 1 vlan 100", "quit",
              "service-port 40 vlan 1004 gpon 0/1/1 ont 3 gemport 2001 multi-service "
              "user-vlan 100 tag-transform translate-and-add inner-vlan 100")
    ont = olt.onts[serial]
    await until(lambda: ont.state == OntState.OPERATIONAL and bool(ont.applied))

    serials, onts = await asyncio.to_thread(netconf_view, olt, serial)
    assert serial in serials
    [state] = onts
    assert state.findtext(f"{{{OLT_STATE}}}state") == "operational"
    assert state.findtext(f"{{{OLT_STATE}}}onu-id") == "3"
    [svc] = state.findall(f"{{{OLT_STATE}}}applied-service")
    assert svc.findtext(f"{{{OLT_STATE}}}c-vlan") == "100"
    assert svc.findtext(f"{{{OLT_STATE}}}s-vlan") == "1004"

    walk = await net_snmp("snmpwalk", *snmp_args(olt, "public"), "1.3.6.1.4.1.32473.1.1",
                          home=tmp_path / "snmp")
    got = walk.values()
    assert got[f"{ONT}.2.2.3"] == serial  # PON port index 2 (0/1/1), onu-id 3
    assert got[f"{ONT}.5.2.3"] == "3"  # operational
    svc_rows = {k: v for k, v in got.items() if k.startswith(f"{SERVICE}.4.2.3.")}
    assert list(svc_rows.values()) == ["1004"]

    # The gateway behind this ONT (an SSH/uci model) is reachable now.
    async with asyncio.timeout(5):
        await lab.wait_gateway("gw-hwtc1a2b3c4d", up=True)


async def test_snmp_service_is_seen_by_the_cli_and_netconf(lab: Lab, tmp_path: Path) -> None:
    olt = lab.olts["olt1"]
    serial = "ALCLB2C3D4E5"  # also unclaimed on 0/1/1
    row = "2.4"  # port index 2, onu-id 4
    home = tmp_path / "snmp"
    run = await net_snmp("snmpset", *snmp_args(olt, "private"), f"{ONT}.2.{row}", "s", serial,
                         f"{ONT}.10.{row}", "i", "4", home=home)
    assert run.rc == 0, run.text
    run = await net_snmp(
        "snmpset", *snmp_args(olt, "private"), f"{SERVICE}.2.{row}.1", "u", "1",
        f"{SERVICE}.3.{row}.1", "u", "200", f"{SERVICE}.4.{row}.1", "u", "2000",
        f"{SERVICE}.5.{row}.1", "s", "tdp-100M", f"{SERVICE}.6.{row}.1", "u", "2204",
        f"{SERVICE}.8.{row}.1", "i", "4", home=home)
    assert run.rc == 0, run.text
    ont = olt.onts[serial]
    await until(lambda: ont.state == OntState.OPERATIONAL and bool(ont.applied))

    out = await cli(lab, olt, tmp_path, "display service-port all")
    line = next(x for x in out.splitlines() if " 2000 " in x and "0/1 /1" in x)
    assert " 4 " in line  # ont-id 4
    assert "2204" in line  # gemport
    serials, onts = await asyncio.to_thread(netconf_view, olt, serial)
    assert serial in serials
    assert onts[0].findtext(f"{{{OLT_STATE}}}state") == "operational"

    # The read-only community cannot undo it.
    run = await net_snmp("snmpset", *snmp_args(olt, "public"), f"{SERVICE}.8.{row}.1", "i",
                         "6", home=home)
    assert run.rc != 0
    assert ont.applied


async def test_netconf_change_is_seen_by_the_cli_and_snmp(lab: Lab, tmp_path: Path) -> None:
    olt = lab.olts["olt1"]
    # SIML0000A001 is in service at start (onu-id 1 on 0/1/0); NETCONF edits its description.
    edit = ('<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
            '<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"><interface>'
            '<name>ont-0/1/0-1</name><description>renamed over NETCONF</description>'
            '</interface></interfaces></config>')

    def change() -> None:
        with netconf(olt) as m:
            m.edit_config(target="running", config=edit)

    await asyncio.to_thread(change)
    out = await cli(lab, olt, tmp_path, "display ont info 0 1 0 1")
    assert "renamed over NETCONF" in out
    got = (await net_snmp("snmpget", *snmp_args(olt, "public"), f"{ONT}.3.1.1",
                          home=tmp_path / "snmp")).values()
    assert got == {f"{ONT}.3.1.1": "renamed over NETCONF"}
    # And nothing of it is saved until someone saves.
    assert olt.unsaved
    await cli(lab, olt, tmp_path, "enable", "save")
    assert not olt.unsaved
