"""Devices and provisioning shortcuts shared by the CLI tests (tests/sim/test_cli_*.py)."""

from __future__ import annotations

from simulator.cli.huawei import HuaweiCli
from simulator.config import builder as bd
from simulator.devices import Credentials, Gateway, Olt, SnmpSettings
from tests.conftest import eventually

USER, PASSWORD = "admin", "s3cret-Pw"
PON_PORTS = ["0/1/0", "0/1/1", "0/2/0"]
UPLINKS = {"0/9/0": frozenset({100, 200}), "0/9/1": frozenset({300})}
SERIAL = "SLNK0000AB01"


def make_olt(name: str = "OLT1") -> Olt:
    return Olt(name, "127.0.0.1", Credentials(USER, PASSWORD),
               SnmpSettings("public", "private", "ponctl", "authkey-123", "privkey-123"),
               frozenset({"ssh"}), list(PON_PORTS), dict(UPLINKS), ranging_delay=0.01)


def make_gateway(olt: Olt, ont_serial: str = SERIAL, name: str = "gw1") -> Gateway:
    return Gateway(name, "127.0.0.2", Credentials("root", PASSWORD),
                   SnmpSettings("public", "private", "ponctl", "authkey-123", "privkey-123"),
                   frozenset({"ssh"}), "GW00000001", "02:00:00:00:00:01", olt, ont_serial, 1)


def run(cli: HuaweiCli, *lines: str) -> str:
    """Run lines in order, failing the test on the first that does not succeed."""
    out = []
    for line in lines:
        reply = cli.handle(line)
        assert reply.ok, f"{line!r} failed:\n{reply.output}"
        out.append(reply.output)
    return "".join(out)


def provision_cli(cli: HuaweiCli, *, serial: str = SERIAL, onu_id: int = 1, c_vlan: int = 10,
                  s_vlan: int = 100, index: int = 1, gemport: int = 1001) -> str:
    """From user view: register ``serial`` on 0/1/0, set eth 1's native VLAN, add a service."""
    return run(
        cli, "enable", "config", "interface gpon 0/1",
        f"ont add 0 {onu_id} sn-auth {serial} omci ont-lineprofile-id 10 "
        f"ont-srvprofile-id 20 desc \"flat {onu_id}\"",
        f"ont port native-vlan 0 {onu_id} eth 1 vlan {c_vlan}", "quit",
        f"service-port {index} vlan {s_vlan} gpon 0/1/0 ont {onu_id} gemport {gemport} "
        f"multi-service user-vlan {c_vlan} tag-transform translate-and-add inner-vlan {c_vlan}",
    )


def provision_netconf(olt: Olt, *, serial: str = "SLNK0000AB07", onu_id: int = 7,
                      name: str = "svc-42", c_vlan: int = 20,
                      s_vlan: int = 200) -> bd.ServiceSpec:
    """What a NETCONF client would write: an ONU and a service under its own forwarder name."""
    onu = bd.OnuSpec("0/1/0", onu_id, serial, "by netconf")
    svc = bd.ServiceSpec(onu, 1, c_vlan, s_vlan, "0/9/0", 2000 + onu_id, 3000 + onu_id,
                         "tdp-100M", name=name)
    olt.edit_config("running", [*bd.onu_registration(onu), *bd.uni_tagging(onu, 1, c_vlan),
                                *bd.traffic_profile("tdp-100M", 100_000_000),
                                *bd.olt_service(svc)], session=999)
    return svc


wait_for = eventually  # one polling helper for every test module
