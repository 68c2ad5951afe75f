"""Topology files: the shipped labs load; bad ones fail naming file, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.lab import Lab
from simulator.topology import TopologyError, load_topology, parse_topology
from tests.conftest import REPO

MINIMAL = {"olts": [{"name": "olt1", "uplinks": [{"port": "0/9/0", "vlans": [1000]}]}]}


def test_default_lab_loads_and_builds() -> None:
    lab = Lab(load_topology(REPO / "configs" / "lab.yaml"))
    st = lab.status()
    assert st["olts"] == 2
    assert st["onts"] == 8
    assert st["ont_states"]["operational"] == 2
    assert {g.protocols for g in lab.gateways.values()} == {
        frozenset({"netconf"}), frozenset({"snmp"}), frozenset({"ssh"})}
    assert len({d.address for d in lab.devices.values()}) == len(lab.devices)
    assert all(d.address.startswith("127.") for d in lab.devices.values())


def test_scale_lab_has_8192_onts_and_gateways() -> None:
    topo = load_topology(REPO / "configs" / "lab-scale.yaml")
    assert len(topo.olts) == 8
    per_olt = [len(o.port_names()) * (o.generate.onts_per_port if o.generate else 0)
               for o in topo.olts]
    assert sum(per_olt) == 8192


@pytest.mark.parametrize(("change", "expected"), [
    ({"olts": [{"name": "olt1", "uplinks": [{"port": "0/9/0", "vlans": [5000]}]}]},
     "olts[0].uplinks[0].vlans: Value error, VLAN 5000 is outside 1..4094"),
    ({"olts": [{"name": "olt1", "uplinks": [{"port": "0/9/0", "vlans": ["9-1"]}]}]},
     "VLAN range '9-1'"),
    ({"olts": [{"name": "olt 1", "uplinks": [{"port": "0/9/0", "vlans": [1]}]}]},
     "olts[0].name"),
    ({"olts": [{"name": "olt1", "uplinks": [{"port": "0/9/0", "vlans": [1]}],
                "onts": [{"serial": "XYZ", "port": "0/1/0"}]}]},
     "olts[0].onts[0].serial"),
    ({"olts": [{"name": "olt1", "uplinks": [{"port": "0/9/0", "vlans": [1]}],
                "onts": [{"serial": "ABCD00000001", "port": "0/7/7"}]}]},
     "which this OLT does not have"),
    ({"address_base": "10.0.0.1", **MINIMAL}, "address_base"),
    ({"olts": [{"name": "olt1", "uplinks": [{"port": "0/9/0", "vlans": [1]}]}],
      "colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"defaults": {"snmp": {"community_ro": "x", "community_rw": "x"}}, **MINIMAL},
     "must differ"),
])
def test_errors_name_the_file_the_field_and_the_reason(change: dict[str, object],
                                                       expected: str) -> None:
    with pytest.raises(TopologyError) as err:
        parse_topology(change, "lab.yaml")
    assert str(err.value).startswith("lab.yaml: ")
    assert expected in str(err.value)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read"):
        load_topology(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("olts: [unclosed\n")
    with pytest.raises(TopologyError, match="not valid YAML"):
        load_topology(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(TopologyError, match="must be a mapping"):
        load_topology(bad)


def test_pre_configured_service_without_network_vlan_is_refused() -> None:
    topo = parse_topology({"olts": [{
        "name": "olt1", "uplinks": [{"port": "0/9/0", "vlans": [1000]}],
        "onts": [{"serial": "ABCD00000001", "port": "0/1/0", "configured": {
            "onu_id": 1, "services": [{"c_vlan": 100, "s_vlan": 3000}]}}]}]}, "lab.yaml")
    with pytest.raises(ValueError, match="S-VLAN 3000"):
        Lab(topo)


def test_faults_at_start_are_applied_and_checked() -> None:
    faults = [{"device": "olt1", "fault": "latency", "value": 0.2},
              {"device": "gw-abcd00000001", "fault": "wrong_credentials", "value": True}]
    spec = {"olts": [{"name": "olt1", "uplinks": [{"port": "0/9/0", "vlans": [1000]}],
                      "onts": [{"serial": "ABCD00000001", "port": "0/1/0",
                                "gateway": {"model": "SL-GW-N"}}]}]}
    lab = Lab(parse_topology({**spec, "faults": faults}, "lab.yaml"))
    assert lab.olts["olt1"].faults.latency == 0.2
    assert lab.gateways["gw-abcd00000001"].faults.wrong_credentials
    with pytest.raises(ValueError, match=r"faults\[0\]: no device named 'olt9'"):
        Lab(parse_topology({**spec, "faults": [{"device": "olt9", "fault": "latency"}]}, "x"))
    with pytest.raises(ValueError, match=r"faults\[0\] \(olt1\): snmp_loss must be 0..1"):
        Lab(parse_topology({**spec, "faults": [{"device": "olt1", "fault": "snmp_loss",
                                                "value": 2}]}, "x"))


@pytest.mark.parametrize(("field", "value"), [
    ("profile", "tdp-100M; reboot"), ("profile", "x" * 40), ("description", "flat 1\nquit"),
])
def test_free_text_fields_are_matched_whole(field: str, value: str) -> None:
    svc = {"c_vlan": 100, "s_vlan": 1000}
    conf: dict[str, object] = {"onu_id": 1, "services": [svc]}
    if field == "profile":
        svc["profile"] = value  # type: ignore[assignment]
    else:
        conf["description"] = value
    spec = {"olts": [{"name": "olt1", "uplinks": [{"port": "0/9/0", "vlans": [1000]}],
                      "onts": [{"serial": "ABCD00000001", "port": "0/1/0",
                                "configured": conf}]}]}
    with pytest.raises(TopologyError, match=field):
        parse_topology(spec, "lab.yaml")


def test_traffic_profiles_are_on_every_olt_and_checked() -> None:
    lab = Lab(parse_topology(MINIMAL, "lab.yaml"))
    olt = lab.olts["olt1"]
    assert not olt.unsaved  # the operator's profiles are saved config
    from simulator.config.validate import tables
    assert {"tdp-100M", "tdp-1G"} <= tables(olt.running)["tdp"]
    spec = {"olts": [{"name": "olt1", "uplinks": [{"port": "0/9/0", "vlans": [1000]}],
                      "traffic_profiles": {"tdp-10M": 10_000_000},
                      "onts": [{"serial": "ABCD00000001", "port": "0/1/0", "configured": {
                          "onu_id": 1, "services": [{"c_vlan": 100, "s_vlan": 1000}]}}]}]}
    with pytest.raises(TopologyError, match="traffic profile 'tdp-100M'"):
        parse_topology(spec, "lab.yaml")
