"""The service catalog: the sample file, every gap kind, and malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.catalog import (
    DEFAULT_PATH,
    Catalog,
    CatalogError,
    Missing,
    Resolved,
    expand_vlans,
    load_catalog,
)
from agent.intent import BandwidthProfile

GOOD = """\
service_types:
  internet: {uni: 1, tagging: untagged}
  iptv: {uni: 2, tagging: tagged, user_vlan: 20}
bandwidth_profiles:
  tdp-1G: {max_bps: 1000000000, assured_bps: 100000000}
isps:
  - code: fibrenet
    name: FibreNet
    services:
      internet: {c_vlan: 100, s_vlan: 1000, bandwidth_profile: tdp-1G}
olts:
  olt1:
    uplinks:
      0/9/0: [1000-1009, 2000]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    message = str(exc.value)
    assert str(path) in message
    return message


@pytest.fixture(scope="module")
def sample() -> Catalog:
    return load_catalog(DEFAULT_PATH)


def test_sample_catalog_loads_and_matches_the_lab(sample: Catalog) -> None:
    assert sample.isps == ("fibrenet", "speedy")
    assert sample.service_types == ("internet", "iptv", "voip")
    assert set(sample.bandwidth_profiles) == {"tdp-100M", "tdp-1G"}
    assert sample.network_services("olt1") == {
        "0/9/0": frozenset(range(1000, 1010)) | {2000, 3000}}
    assert sample.network_services("olt2") == {"0/9/0": frozenset(range(1000, 1010)) | {2000}}
    assert sample.check() == []


def test_resolve_builds_the_intent_pieces(sample: Catalog) -> None:
    r = sample.resolve("fibrenet", "internet", "olt1")
    assert r == Resolved(isp="fibrenet", service_type="internet", olt="olt1", c_vlan=100,
                         s_vlan=1000, uplink="0/9/0", uni=1, tagged=False, user_vlan=None,
                         profile=BandwidthProfile("tdp-1G", 1_000_000_000, 100_000_000))
    iptv = sample.resolve("fibrenet", "iptv", "olt2")
    assert isinstance(iptv, Resolved)
    assert (iptv.c_vlan, iptv.s_vlan, iptv.tagged, iptv.user_vlan) == (200, 2000, True, 20)
    speedy = sample.resolve("speedy", "internet", "olt2")
    assert isinstance(speedy, Resolved)
    assert (speedy.c_vlan, speedy.s_vlan, speedy.profile.name) == (101, 1001, "tdp-100M")


@pytest.mark.parametrize(("isp", "service_type", "olt", "expected"), [
    ("speedy", "iptv", "olt1",
     [Missing("isp-vlan-missing", "ISP 'speedy' has no VLAN for service type 'iptv'")]),
    ("nope", "internet", "olt1",
     [Missing("isp-unknown", "ISP 'nope' is not in the catalog")]),
    ("fibrenet", "tv", "olt1",
     [Missing("service-type-unknown",
              "service type 'tv' is not in the catalog (known: internet, iptv, voip)")]),
    ("fibrenet", "voip", "olt2",
     [Missing("network-service-missing",
              "OLT 'olt2' has no uplink carrying S-VLAN 3000 (network service missing)")]),
    ("fibrenet", "internet", "olt9",
     [Missing("olt-unknown",
              "OLT 'olt9' is not in the catalog (no network services configured for it)")]),
    ("nope", "tv", "olt9",
     [Missing("isp-unknown", "ISP 'nope' is not in the catalog"),
      Missing("service-type-unknown",
              "service type 'tv' is not in the catalog (known: internet, iptv, voip)"),
      Missing("olt-unknown",
              "OLT 'olt9' is not in the catalog (no network services configured for it)")]),
])
def test_each_gap_is_reported_exactly(sample: Catalog, isp: str, service_type: str, olt: str,
                                      expected: list[Missing]) -> None:
    assert sample.resolve(isp, service_type, olt) == expected
    assert [str(m) for m in expected] == [m.message for m in expected]


def test_undefined_bandwidth_profile_is_a_gap_not_a_load_error(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, GOOD.replace("bandwidth_profile: tdp-1G",
                                                        "bandwidth_profile: tdp-5G")))
    expected = Missing("bandwidth-profile-unknown", "bandwidth profile 'tdp-5G' of ISP "
                       "'fibrenet' service 'internet' is not defined")
    assert catalog.resolve("fibrenet", "internet", "olt1") == [expected]
    assert catalog.check() == [expected]


def test_isp_service_of_unknown_type_is_reported_by_check(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, GOOD.replace("      internet: {c_vlan",
                                                        "      tv: {c_vlan")))
    assert [m.kind for m in catalog.check()] == ["service-type-unknown"]
    assert catalog.resolve("fibrenet", "internet", "olt1") == [
        Missing("isp-vlan-missing", "ISP 'fibrenet' has no VLAN for service type 'internet'")]


def test_gaps_without_an_olt_skips_the_network_check(sample: Catalog) -> None:
    assert sample.gaps("fibrenet", "voip") == []
    assert [m.kind for m in sample.gaps("speedy", "iptv")] == ["isp-vlan-missing"]


SVC = "isps[0].services.internet"
GE1, LE4094 = "greater than or equal to 1", "less than or equal to 4094"


@pytest.mark.parametrize(("old", "new", "field", "reason"), [
    ("c_vlan: 100", "c_vlan: 0", f"{SVC}.c_vlan", GE1),
    ("c_vlan: 100", "c_vlan: 4095", f"{SVC}.c_vlan", LE4094),
    ("s_vlan: 1000", "s_vlan: 5000", f"{SVC}.s_vlan", LE4094),
    ("c_vlan: 100", "c_vlan: ten", f"{SVC}.c_vlan", "valid integer"),
    ("c_vlan: 100", 'c_vlan: "100"', f"{SVC}.c_vlan", "valid integer"),
    ("user_vlan: 20", "user_vlan: 4095", "service_types.iptv.user_vlan", LE4094),
    ("c_vlan: 100,", "c_vlan: 100, colour: red,", f"{SVC}.colour",
     "Extra inputs are not permitted"),
    ("olts:", "extras: 1\nolts:", "extras", "Extra inputs are not permitted"),
    ("[1000-1009, 2000]", "[1000-1009, 5000]", "olts.olt1.uplinks", "VLAN 5000 is outside 1..4094"),
    ("[1000-1009, 2000]", "[1009-1000]", "olts.olt1.uplinks", "low to high"),
    ("[1000-1009, 2000]", "[ten]", "olts.olt1.uplinks", "neither a VLAN id nor a range"),
    ("[1000-1009, 2000]", "[]", "olts.olt1.uplinks", "carries no VLANs"),
    ("0/9/0:", "uplink-a:", "olts.olt1.uplinks", "is not an uplink port"),
    ("{uni: 1, tagging: untagged}", "{uni: 5, tagging: untagged}", "service_types.internet.uni",
     "less than or equal to 4"),
    ("tagging: tagged, user_vlan: 20", "tagging: tagged", "service_types.iptv",
     "needs user_vlan"),
    ("tagging: untagged}", "tagging: double}", "service_types.internet.tagging",
     "'untagged' or 'tagged'"),
    ("assured_bps: 100000000", "assured_bps: 2000000000", "bandwidth_profiles.tdp-1G",
     "fixed_bps <= assured_bps <= max_bps"),
    ("code: fibrenet", "code: 'fibre net'", "isps[0].code", "should match pattern"),
])
def test_malformed_field_names_file_field_and_reason(tmp_path: Path, old: str, new: str,
                                                     field: str, reason: str) -> None:
    assert old in GOOD
    message = load_error(tmp_path, GOOD.replace(old, new, 1))
    assert f": {field}: " in message
    assert reason in message


def test_duplicate_isp_code_is_a_load_error(tmp_path: Path) -> None:
    text = GOOD.replace("\nolts:", "\n  - {code: fibrenet, name: Again}\nolts:")
    message = load_error(tmp_path, text)
    assert "ISP code 'fibrenet' appears twice" in message


def test_same_s_vlan_on_two_uplinks_is_a_load_error(tmp_path: Path) -> None:
    text = GOOD.replace("0/9/0: [1000-1009, 2000]", "0/9/0: [1000-1009, 2000]\n      0/9/1: [2000]")
    assert "S-VLAN 2000 is on both uplink 0/9/0 and uplink 0/9/1" in load_error(tmp_path, text)


def test_duplicate_yaml_key_is_a_load_error(tmp_path: Path) -> None:
    text = GOOD.replace("  olt1:\n", "  olt1:\n    uplinks: {0/9/0: [5]}\n  olt1:\n")
    assert "duplicate key 'olt1'" in load_error(tmp_path, text)


@pytest.mark.parametrize(("text", "reason"), [
    ("- just\n- a list\n", "the catalog must be a mapping (got list)"),
    ("", "the catalog must be a mapping (got NoneType)"),
    ("isps: [\n", "not valid YAML"),
    ("isps: !!python/object:os.system {}\n", "not valid YAML"),
])
def test_malformed_file_names_file_and_reason(tmp_path: Path, text: str, reason: str) -> None:
    assert reason in load_error(tmp_path, text)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "absent.yaml")


def test_every_problem_is_listed_one_per_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, GOOD.replace("c_vlan: 100", "c_vlan: 0")
                         .replace("s_vlan: 1000", "s_vlan: 4095"))
    assert len(message.splitlines()) == 2


def test_ranges_expand() -> None:
    assert expand_vlans([1000, "1002-1004", " 7-7 "]) == {1000, 1002, 1003, 1004, 7}
    assert expand_vlans(["1-4094"]) == frozenset(range(1, 4095))
    for bad in (["0-3"], ["4090-4095"], [0], ["a-b"], ["10-"]):
        with pytest.raises(ValueError, match=r"VLAN|neither"):
            expand_vlans(bad)
