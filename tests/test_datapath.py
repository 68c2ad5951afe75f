"""Tests for the simulator's data path (simulator/datapath.py).

The reference service is /work/shared/yang/examples/onu-vlan-service.xml, rebuilt by hand below:
ONU UNI eth 1 untagged -> push C-VLAN 100; OLT v-enet accepts C-VLAN 100; uplink 0/9/0
sub-interface matches S-VLAN 1000 + C-VLAN 100, pops 1 on ingress and pushes S-VLAN 1000 on egress.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Packet
from scapy.utils import rdpcap

from simulator.datapath import (
    TPID_C_VLAN,
    TPID_S_VLAN,
    IngressRule,
    ServicePath,
    SubInterface,
    Tag,
    TagMatch,
    describe,
    dhcp_discover,
    frame_tags,
    trace_downstream,
    trace_upstream,
    write_pcap,
)

SERIAL = "HWTC1A2B3C4D"
ROUTER_MAC = "00:11:22:33:44:55"
UPLINK = "0/9/0"


def _uni_subif(name: str, rule: IngressRule, egress_pop: int = 1) -> SubInterface:
    return SubInterface(name, (rule,), egress_pop=egress_pop)


def _olt_user_subif(name: str, cvlan: int) -> SubInterface:
    rule = IngressRule(f"cvlan{cvlan}", 100, "tagged", (TagMatch(cvlan, "c-vlan"),))
    return SubInterface(name, (rule,))


def _uplink_subif(svlan: int, cvlan: int) -> SubInterface:
    rule = IngressRule(
        f"svlan{svlan}-cvlan{cvlan}",
        100,
        "tagged",
        (TagMatch(svlan, "s-vlan"), TagMatch(cvlan, "c-vlan")),
        pop=1,
    )
    return SubInterface(
        f"uplink-{UPLINK}.{svlan}.{cvlan}", (rule,), egress_push=(Tag(svlan, TPID_S_VLAN),)
    )


def _internet(
    serial: str = SERIAL, uni_rule_priority: int = 100, gemport: int | None = 1024
) -> ServicePath:
    """The BBF example service: UNI 1 untagged <-> C-VLAN 100 <-> S-VLAN 1000 on 0/9/0."""
    uni_rule = IngressRule(
        "untagged-to-cvlan100", uni_rule_priority, "untagged", push=(Tag(100, TPID_C_VLAN),)
    )
    return ServicePath(
        ont_serial=serial,
        uni=1,
        uni_subif=_uni_subif("uni-ont1-eth1.hsi", uni_rule),
        olt_user_subif=_olt_user_subif("venet-ont1-eth1.hsi", 100),
        uplink_subif=_uplink_subif(1000, 100),
        uplink=UPLINK,
        gemport=gemport,
    )


def _iptv() -> ServicePath:
    """Second service on UNI 1: tagged VLAN 20 translated to C-VLAN 200, S-VLAN 2000."""
    uni_rule = IngressRule(
        "vlan20-to-cvlan200", 100, "tagged", (TagMatch(20, "c-vlan"),), pop=1, push=(Tag(200),)
    )
    return ServicePath(
        ont_serial=SERIAL,
        uni=1,
        # Downstream translates back: pop C-VLAN 200, push VLAN 20 for the set-top box.
        uni_subif=SubInterface(
            "uni-ont1-eth1.iptv", (uni_rule,), egress_pop=1, egress_push=(Tag(20),)
        ),
        olt_user_subif=_olt_user_subif("venet-ont1-eth1.iptv", 200),
        uplink_subif=_uplink_subif(2000, 200),
        uplink=UPLINK,
        gemport=1025,
    )


def _with_tags(frame: bytes, *tags: tuple[int, int]) -> bytes:
    """Insert (tpid, vlan) tags, outermost first, after the MACs of an untagged frame."""
    inserted = b"".join(tpid.to_bytes(2, "big") + vlan.to_bytes(2, "big") for tpid, vlan in tags)
    return frame[:12] + inserted + frame[12:]


def _layer_names(frame: bytes) -> list[str]:
    names: list[str] = []
    layer: Packet = Ether(frame)
    while layer:
        names.append(type(layer).__name__)
        layer = layer.payload
    return names


# --------------------------------------------------------------------------- upstream


def test_dhcp_discover_leaves_uplink_double_tagged_with_payload_intact() -> None:
    discover = dhcp_discover(ROUTER_MAC)
    result = trace_upstream([_internet()], 1, discover)

    assert result.forwarded
    assert result.drop_reason is None
    assert result.egress == f"uplink {UPLINK}"
    assert result.frame is not None
    out = result.frame
    assert _layer_names(out) == ["Ether", "Dot1AD", "Dot1Q", "IP", "UDP", "BOOTP", "DHCP"]

    parsed = Ether(out)
    assert parsed.dst == "ff:ff:ff:ff:ff:ff"
    assert parsed.src == ROUTER_MAC
    assert parsed.type == TPID_S_VLAN
    s_tag = parsed[Dot1AD]
    assert (s_tag.vlan, s_tag.prio, s_tag.type) == (1000, 0, TPID_C_VLAN)
    c_tag = parsed[Dot1Q]
    assert (c_tag.vlan, c_tag.prio, c_tag.type) == (100, 0, 0x0800)
    assert parsed[IP].src == "0.0.0.0"
    assert parsed[IP].dst == "255.255.255.255"
    assert (parsed[UDP].sport, parsed[UDP].dport) == (68, 67)
    assert parsed[BOOTP].op == 1
    assert ("message-type", 1) in parsed[DHCP].options

    # Two 4-byte tags inserted after the MACs, everything else byte for byte the original.
    assert len(out) == len(discover) + 8
    assert out[:12] == discover[:12]
    assert out[20:] == discover[12:]
    assert bytes(parsed[IP]) == bytes(Ether(discover)[IP])


def test_upstream_steps_name_each_hop() -> None:
    result = trace_upstream([_internet()], 1, dhcp_discover(ROUTER_MAC))

    steps = "\n".join(result.steps)
    assert f"ONT {SERIAL} UNI 1 ingress rule 'untagged-to-cvlan100'" in steps
    assert "push c-vlan 100 (0x8100)" in steps
    assert "GEM port 1024" in steps
    assert "venet-ont1-eth1.hsi" in steps
    assert f"OLT uplink {UPLINK} egress" in steps
    assert "push s-vlan 1000 (0x88a8)" in steps
    assert result.steps[-1].startswith(f"leaves uplink {UPLINK}")


def test_upstream_frame_with_unmatched_vlan_is_dropped_naming_it() -> None:
    tagged = _with_tags(dhcp_discover(ROUTER_MAC), (TPID_C_VLAN, 30))
    result = trace_upstream([_internet()], 1, tagged)

    assert not result.forwarded
    assert result.frame is None
    assert result.egress is None
    assert result.drop_reason is not None
    assert f"ONT {SERIAL} UNI 1" in result.drop_reason
    assert "c-vlan 30" in result.drop_reason
    assert result.steps[-1] == f"dropped: {result.drop_reason}"


def test_upstream_on_uni_without_service_is_dropped() -> None:
    result = trace_upstream([_internet()], 2, dhcp_discover(ROUTER_MAC))

    assert not result.forwarded
    assert result.drop_reason is not None
    assert "UNI 2" in result.drop_reason


def test_olt_rejects_c_vlan_it_does_not_expect() -> None:
    # The ONT pushes C-VLAN 101, but the OLT's v-enet sub-interface only accepts 100.
    good = _internet()
    wrong_rule = IngressRule("untagged-to-cvlan101", 100, "untagged", push=(Tag(101),))
    path = ServicePath(
        SERIAL,
        1,
        _uni_subif("uni-ont1-eth1.hsi", wrong_rule),
        good.olt_user_subif,
        good.uplink_subif,
        UPLINK,
        1024,
    )
    result = trace_upstream([path], 1, dhcp_discover(ROUTER_MAC))

    assert not result.forwarded
    assert result.drop_reason is not None
    assert "OLT" in result.drop_reason
    assert "c-vlan 101" in result.drop_reason
    assert "expected 'cvlan100' c-vlan 100" in result.drop_reason


@pytest.mark.parametrize(
    ("catch_all_priority", "expected_cvlan"),
    [(200, 100), (50, 300)],
    ids=["untagged-rule-first", "catch-all-first"],
)
def test_priority_lowest_number_wins(catch_all_priority: int, expected_cvlan: int) -> None:
    # Two services on UNI 1 whose rules both match an untagged frame; BBF: priority 1 is highest.
    internet = _internet(uni_rule_priority=100)
    catch_all = ServicePath(
        SERIAL,
        1,
        _uni_subif(
            "uni-ont1-eth1.other",
            IngressRule("any-to-cvlan300", catch_all_priority, "any", push=(Tag(300),)),
        ),
        _olt_user_subif("venet-ont1-eth1.other", 300),
        _uplink_subif(3000, 300),
        UPLINK,
        1026,
    )
    result = trace_upstream([internet, catch_all], 1, dhcp_discover(ROUTER_MAC))

    assert result.forwarded
    assert result.frame is not None
    svlan = {100: 1000, 300: 3000}[expected_cvlan]
    assert frame_tags(result.frame) == (Tag(svlan, TPID_S_VLAN), Tag(expected_cvlan))


def test_equal_priority_overlap_is_reported_not_guessed() -> None:
    internet = _internet(uni_rule_priority=100)
    rival = ServicePath(
        SERIAL,
        1,
        _uni_subif(
            "uni-ont1-eth1.rival",
            IngressRule("untagged-to-cvlan300", 100, "untagged", push=(Tag(300),)),
        ),
        _olt_user_subif("venet-ont1-eth1.rival", 300),
        _uplink_subif(3000, 300),
        UPLINK,
        None,
    )
    result = trace_upstream([internet, rival], 1, dhcp_discover(ROUTER_MAC))

    assert not result.forwarded
    assert result.drop_reason is not None
    assert "priority 100" in result.drop_reason
    assert "'untagged-to-cvlan100'" in result.drop_reason
    assert "'untagged-to-cvlan300'" in result.drop_reason


def test_two_services_on_one_uni_reach_their_own_uplink_vlans() -> None:
    paths = [_internet(), _iptv()]
    untagged = dhcp_discover(ROUTER_MAC)
    vlan20 = _with_tags(untagged, (TPID_C_VLAN, 20))

    internet = trace_upstream(paths, 1, untagged)
    iptv = trace_upstream(paths, 1, vlan20)

    assert internet.frame is not None
    assert iptv.frame is not None
    assert frame_tags(internet.frame) == (Tag(1000, TPID_S_VLAN), Tag(100))
    assert frame_tags(iptv.frame) == (Tag(2000, TPID_S_VLAN), Tag(200))
    assert iptv.frame[20:] == untagged[12:]
    assert "GEM port 1025" in "\n".join(iptv.steps)


def test_upstream_requires_paths_of_one_ont() -> None:
    with pytest.raises(ValueError, match="one ONT"):
        trace_upstream([_internet(), _internet(serial="ALCL00000001")], 1, b"\x00" * 60)


def test_malformed_frame_is_dropped() -> None:
    result = trace_upstream([_internet()], 1, b"\x00" * 10)

    assert not result.forwarded
    assert result.drop_reason is not None
    assert "malformed" in result.drop_reason


# --------------------------------------------------------------------------- downstream


def test_downstream_strips_both_tags_and_exits_uni_untagged() -> None:
    discover = dhcp_discover(ROUTER_MAC)
    on_uplink = _with_tags(discover, (TPID_S_VLAN, 1000), (TPID_C_VLAN, 100))
    result = trace_downstream([_internet()], UPLINK, on_uplink)

    assert result.forwarded
    assert result.egress == f"ONT {SERIAL} UNI 1"
    assert result.frame == discover
    assert result.frame is not None
    assert _layer_names(result.frame) == ["Ether", "IP", "UDP", "BOOTP", "DHCP"]
    steps = "\n".join(result.steps)
    assert "pop 1 tag" in steps
    assert f"ONT {SERIAL} UNI 1 egress" in steps


def test_round_trip_up_then_down_restores_the_frame() -> None:
    discover = dhcp_discover(ROUTER_MAC)
    up = trace_upstream([_internet()], 1, discover)
    assert up.frame is not None

    down = trace_downstream([_internet()], UPLINK, up.frame)

    assert down.frame == discover


def test_downstream_wrong_s_vlan_is_dropped() -> None:
    frame = _with_tags(dhcp_discover(ROUTER_MAC), (TPID_S_VLAN, 999), (TPID_C_VLAN, 100))
    result = trace_downstream([_internet()], UPLINK, frame)

    assert not result.forwarded
    assert result.drop_reason is not None
    assert f"uplink {UPLINK}" in result.drop_reason
    assert "s-vlan 999" in result.drop_reason
    assert "s-vlan 1000 + c-vlan 100" in result.drop_reason


def test_downstream_c_tagged_s_vlan_is_not_an_s_tag() -> None:
    # VLAN 1000 carried with TPID 0x8100 is a C-tag: the s-vlan match must not take it.
    frame = _with_tags(dhcp_discover(ROUTER_MAC), (TPID_C_VLAN, 1000), (TPID_C_VLAN, 100))
    result = trace_downstream([_internet()], UPLINK, frame)

    assert not result.forwarded


def test_downstream_two_services_each_reach_the_uni_with_their_tagging() -> None:
    paths = [_internet(), _iptv()]
    discover = dhcp_discover(ROUTER_MAC)

    internet = trace_downstream(
        paths, UPLINK, _with_tags(discover, (TPID_S_VLAN, 1000), (TPID_C_VLAN, 100))
    )
    iptv = trace_downstream(
        paths, UPLINK, _with_tags(discover, (TPID_S_VLAN, 2000), (TPID_C_VLAN, 200))
    )

    assert internet.frame == discover
    assert iptv.frame == _with_tags(discover, (TPID_C_VLAN, 20))
    assert iptv.egress == internet.egress == f"ONT {SERIAL} UNI 1"


def test_downstream_on_unknown_uplink_is_dropped() -> None:
    frame = _with_tags(dhcp_discover(ROUTER_MAC), (TPID_S_VLAN, 1000), (TPID_C_VLAN, 100))
    result = trace_downstream([_internet()], "0/9/1", frame)

    assert not result.forwarded
    assert result.drop_reason is not None
    assert "0/9/1" in result.drop_reason


def test_downstream_n_to_1_forwarder_is_reported() -> None:
    # Two ONTs behind one uplink sub-interface: choosing one needs MAC learning.
    paths = [_internet(), _internet(serial="ALCL00000001")]
    frame = _with_tags(dhcp_discover(ROUTER_MAC), (TPID_S_VLAN, 1000), (TPID_C_VLAN, 100))
    result = trace_downstream(paths, UPLINK, frame)

    assert not result.forwarded
    assert result.drop_reason is not None
    assert "MAC table" in result.drop_reason


# --------------------------------------------------------------------------- frames and pcap


def test_describe_names_macs_tags_and_dhcp() -> None:
    frame = _with_tags(dhcp_discover(ROUTER_MAC), (TPID_S_VLAN, 1000), (TPID_C_VLAN, 100))
    text = describe(frame)

    assert text.startswith(f"{ROUTER_MAC} > ff:ff:ff:ff:ff:ff")
    assert "s-vlan 1000 (0x88a8) / c-vlan 100 (0x8100)" in text
    assert "UDP 68 > 67" in text
    assert "DHCP Discover" in text
    assert "\n" not in text
    assert describe(b"\x01\x02").startswith("malformed frame (2 bytes)")


def test_legacy_qinq_tpid_is_parsed_and_kept() -> None:
    frame = _with_tags(dhcp_discover(ROUTER_MAC), (0x9100, 1000), (TPID_C_VLAN, 100))

    assert frame_tags(frame) == (Tag(1000, 0x9100), Tag(100))
    assert "vlan 1000 (0x9100)" in describe(frame)


def test_dhcp_discover_is_a_broadcast_from_the_router() -> None:
    parsed = Ether(dhcp_discover(ROUTER_MAC))

    assert parsed.dst == "ff:ff:ff:ff:ff:ff"
    assert parsed.src == ROUTER_MAC
    assert parsed[BOOTP].chaddr[:6] == bytes.fromhex(ROUTER_MAC.replace(":", ""))
    assert dhcp_discover(ROUTER_MAC) == dhcp_discover(ROUTER_MAC)
    with pytest.raises(ValueError, match="not a MAC"):
        dhcp_discover("00:11:22:33:44")


def test_write_pcap_reads_back_the_same_frames(tmp_path: Path) -> None:
    discover = dhcp_discover(ROUTER_MAC)
    up = trace_upstream([_internet()], 1, discover)
    assert up.frame is not None
    frames = [discover, up.frame]
    pcap = tmp_path / "trace.pcap"

    write_pcap(pcap, frames)

    assert [bytes(packet) for packet in rdpcap(str(pcap))] == frames


@pytest.mark.parametrize(
    "build",
    [
        lambda: Tag(4096),
        lambda: Tag(10, tpid=0x0800),
        lambda: Tag(10, pcp=8),
        lambda: TagMatch(5000, "c-vlan"),
        lambda: IngressRule("r", 0, "untagged"),
        lambda: IngressRule("r", 1, "tagged"),
        lambda: IngressRule("r", 1, "untagged", (TagMatch(1, "c-vlan"),)),
        lambda: IngressRule("r", 1, "any", pop=3),
        lambda: SubInterface("s", (IngressRule("r", 1, "any"), IngressRule("r", 2, "any"))),
    ],
)
def test_invalid_configuration_is_refused(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()
