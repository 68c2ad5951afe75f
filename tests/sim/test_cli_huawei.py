"""The OLT's Huawei-style interpreter, line by line, without SSH.

Without a running event loop an ONT finishes ranging at once, so these tests are synchronous
except where they check the timing-driven path.
"""

from __future__ import annotations

import pytest

from simulator.cli import oltconfig as oc
from simulator.cli.huawei import HuaweiCli
from simulator.config import builder as bd
from simulator.config.validate import tables
from simulator.devices import OntState
from tests.sim.cli_helpers import (
    SERIAL,
    make_olt,
    provision_cli,
    provision_netconf,
    run,
    wait_for,
)

SERVICE = ("service-port {i} vlan {s} gpon 0/1/0 ont 1 gemport {g} multi-service user-vlan 10 "
           "tag-transform translate-and-add inner-vlan 10")


def _cli(interactive: bool = True) -> HuaweiCli:
    olt = make_olt()
    return HuaweiCli(olt, olt.new_session_id(), interactive=interactive)


def _steady(text: str) -> str:
    """Output without the optical levels, which drift from one reading to the next."""
    return "\n".join(line for line in text.splitlines() if "optical power" not in line)


def _in_interface(cli: HuaweiCli) -> None:
    run(cli, "enable", "config", "interface gpon 0/1")


def test_views_and_prompts() -> None:
    cli = _cli()
    assert "Integrated Access Software" in cli.banner
    steps = [("enable", "OLT1#"), ("config", "OLT1(config)#"),
             ("interface gpon 0/1", "OLT1(config-if-gpon-0/1)#"), ("quit", "OLT1(config)#"),
             ("interface gpon 0/2", "OLT1(config-if-gpon-0/2)#"), ("return", "OLT1#"),
             ("config", "OLT1(config)#"), ("quit", "OLT1#")]
    assert cli.prompt == "OLT1>"
    for line, prompt in steps:
        reply = cli.handle(line)
        assert (reply.ok, reply.prompt, reply.close) == (True, prompt, False), line
    assert cli.handle("quit").close


def test_quit_from_user_view_ends_the_session() -> None:
    assert _cli().handle("quit").close


def test_commands_belong_to_their_view() -> None:
    cli = _cli()
    assert not cli.handle("config").ok  # needs enable first
    assert not cli.handle("interface gpon 0/1").ok
    run(cli, "enable", "config")
    reply = cli.handle("interface gpon 0/7")  # no such board
    assert "% Parameter error" in reply.output


def test_unknown_command_caret_sits_under_the_word() -> None:
    cli = _cli()
    run(cli, "enable")
    reply = cli.handle("display ontt autofind all")
    caret, message = reply.output.splitlines()
    assert message == "  % Unknown command, the error locates at '^'"
    assert caret == " " * len("OLT1#display ") + "^"  # the prompt is on the screen too
    assert reply.status == 1


def test_caret_without_a_prompt_on_exec() -> None:
    reply = _cli(interactive=False).handle("foo bar")
    assert reply.output == "^\n  % Unknown command, the error locates at '^'\n"


@pytest.mark.parametrize(("line", "message"), [
    ("display ont info 0 1", "Incomplete command"),
    ("display ont info 0 1 0 x", "Parameter error"),
    ("display ont autofind all now", "Too many parameters"),
    ("display v", "Ambiguous command"),
])
def test_error_kinds(line: str, message: str) -> None:
    reply = _cli().handle(line)
    assert f"% {message}, the error locates at '^'" in reply.output
    assert not reply.ok


def test_abbreviated_keywords_work() -> None:
    cli = _cli()
    cli.olt.add_ont(SERIAL, "0/1/0")
    assert "SLNK-0000AB01" in run(cli, "disp ont autof all")


def test_autofind_lists_unclaimed_onts_only() -> None:
    cli = _cli()
    assert "The automatically found ONTs do not exist" in run(cli, "display ont autofind all")
    cli.olt.add_ont(SERIAL, "0/1/1", model="SL-ONT4X", firmware="V9.9")
    out = run(cli, "display ont autofind all")
    for text in ("F/S/P               : 0/1/1", "534C4E4B0000AB01 (SLNK-0000AB01)",
                 "VendorID            : SLNK", "SL-ONT4X", "V9.9",
                 "The number of GPON autofind ONT is 1"):
        assert text in out
    provision_cli(HuaweiCli(cli.olt, 2), index=1)  # registered on 0/1/0: still unclaimed
    assert "0/1/1" in run(cli, "display ont autofind all")


async def test_ont_add_claims_the_ont_and_it_ranges() -> None:
    cli = _cli()
    ont = cli.olt.add_ont(SERIAL, "0/1/0")
    states = [ont.state]
    _in_interface(cli)
    out = run(cli, f"ont add 0 5 sn-auth {SERIAL} omci ont-lineprofile-id 1 "
                   "ont-srvprofile-id 1 desc \"Flat 5, rear\"")
    assert "success: 1" in out
    assert "ONTID :5" in out
    states.append(ont.state)
    assert states == [OntState.UNCLAIMED, OntState.RANGING]
    await wait_for(lambda: ont.state == OntState.OPERATIONAL)
    assert ont.onu_id == 5
    table = run(cli, "display ont info 0 all")
    assert "online   normal   match" in table
    assert "Flat 5, rear" in table
    assert "the total of ONTs are: 1, online: 1" in table


@pytest.mark.parametrize("serial", ["SLNK-0000AB01", "534C4E4B0000AB01", "slnk0000ab01"])
def test_serial_forms_are_accepted(serial: str) -> None:
    cli = _cli()
    _in_interface(cli)
    run(cli, f"ont add 0 1 sn-auth {serial} omci ont-lineprofile-id 1 ont-srvprofile-id 1")
    assert cli.olt.view.onu_by_serial(SERIAL) is not None


def test_ont_add_refusals() -> None:
    cli = _cli()
    _in_interface(cli)
    add = "ont add 0 {id} sn-auth {sn} omci ont-lineprofile-id 1 ont-srvprofile-id 1"
    run(cli, add.format(id=1, sn=SERIAL))
    before = cli.olt.running
    assert cli.handle(add.format(id=2, sn=SERIAL)).output == "  Failure: SN already exists\n"
    assert "Failure: The ONT ID already exists" in cli.handle(
        add.format(id=1, sn="SLNK0000AB02")).output
    assert "% Parameter error" in cli.handle(add.format(id=128, sn="SLNK0000AB02")).output
    assert "% Parameter error" in cli.handle(add.format(id=2, sn="SLNK00XX")).output
    assert "% Parameter error" in cli.handle(add.format(id=2, sn="SLNK0000AB02")
                                             .replace("ont add 0", "ont add 9")).output
    assert cli.olt.running is before


@pytest.mark.parametrize("desc", ['"' + "x" * 65 + '"', '"tab\there"', '"bell\x07"', '""',
                                  '"quote"inside"'])
def test_descriptions_are_checked_at_the_edge(desc: str) -> None:
    cli = _cli()
    _in_interface(cli)
    reply = cli.handle(f"ont add 0 1 sn-auth {SERIAL} omci ont-lineprofile-id 1 "
                       f"ont-srvprofile-id 1 desc {desc}")
    assert "% Parameter error" in reply.output
    assert not cli.olt.view.onus


def test_xml_special_characters_in_a_description_are_data() -> None:
    cli = _cli()
    _in_interface(cli)
    desc = "<b>&amp; 'x' </interface>"
    run(cli, f'ont add 0 1 sn-auth {SERIAL} omci ont-lineprofile-id 1 ont-srvprofile-id 1 '
             f'desc "{desc}"')
    onu = cli.olt.view.onu_by_serial(SERIAL)
    assert onu is not None
    assert onu.description == desc


async def test_service_port_applies_the_service() -> None:
    cli = _cli()
    ont = cli.olt.add_ont(SERIAL, "0/1/0")
    provision_cli(cli, index=7, gemport=1234)
    await wait_for(lambda: bool(ont.applied))
    (applied,) = ont.applied.values()
    assert (applied.uni, applied.c_vlan, applied.s_vlan, applied.gemport_id) == (1, 10, 100, 1234)
    assert applied.profile == oc.DEFAULT_TDP
    out = run(cli, "display service-port all")
    row = next(line for line in out.splitlines() if line.strip().startswith("7 "))
    assert row.split() == ["7", "100", "common", "gpon", "0/1", "/0", "1", "1234", "vlan", "10",
                           "tdp-default", "tdp-default", "up"]
    assert "Total : 1  (Up/Down :    1/0)" in out


def test_service_ports_of_one_ont() -> None:
    cli = _cli()
    provision_cli(cli, index=7, gemport=1234)  # ONT 1 on 0/1/0
    run(cli, "interface gpon 0/1",  # still in config mode: ONT 2 and its service
        "ont add 0 2 sn-auth SLNK0000BEEF omci ont-lineprofile-id 10 ont-srvprofile-id 20",
        "ont port native-vlan 0 2 eth 1 vlan 10", "quit",
        "service-port 8 vlan 100 gpon 0/1/0 ont 2 gemport 1235 multi-service user-vlan 10 "
        "tag-transform translate-and-add inner-vlan 10")
    out = run(cli, "display service-port port 0/1/0 ont 2")
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [(r[0], r[6], r[7]) for r in rows] == [("8", "2", "1235")]  # index, ONT-ID, GEM
    assert "Total : 1" in out
    for other in ("port 0/1/0 ont 3", "port 0/1/1 ont 1"):
        assert "No service virtual port" in run(cli, f"display service-port {other}")
    assert "Total : 2" in run(cli, "display service-port all")


def test_translate_form_and_named_traffic_table() -> None:
    cli = _cli()
    provision_netconf(cli.olt)  # creates tdp-100M
    provision_cli(cli, index=1)
    run(cli, "interface gpon 0/1", "ont port native-vlan 0 1 eth 2 vlan 30", "quit")
    run(cli, "service-port 2 vlan 300 gpon 0/1/0 ont 1 gemport 1002 multi-service user-vlan 30 "
             "tag-transform translate inbound traffic-table name tdp-100M outbound "
             "traffic-table name tdp-100M")
    svc = cli.olt.view.services[cli.olt.view.services_of("ont-0/1/0-1")[1].name]
    assert (svc.uni, svc.s_vlan, svc.uplink, svc.profile) == (2, 300, "0/9/1", "tdp-100M")
    reply = cli.handle("service-port 3 vlan 300 gpon 0/1/0 ont 1 gemport 1002 multi-service "
                       "user-vlan 30 tag-transform translate inbound traffic-table name nope "
                       "outbound traffic-table name nope")
    assert "Failure: The traffic table does not exist" in reply.output


def test_vlan_not_on_any_uplink_is_refused_and_nothing_changes() -> None:
    cli = _cli()
    provision_cli(cli)
    before = cli.olt.running
    reply = cli.handle(SERVICE.format(i=2, s=999, g=1002))
    assert reply.output.startswith("  Failure: The VLAN does not exist")
    assert "999" in reply.output
    assert "not on any uplink" in reply.output
    assert cli.olt.running is before
    assert 2 not in oc.service_indexes(cli.olt)


def test_service_port_refusals() -> None:
    cli = _cli()
    provision_cli(cli, index=1)
    before = cli.olt.running
    cases = {
        SERVICE.format(i=1, s=200, g=1001): "Service virtual port has existed already",
        SERVICE.format(i=2, s=100, g=1001): "Service virtual port has existed already",
        SERVICE.format(i=2, s=200, g=1009): "already uses GEM port 1001",
        SERVICE.format(i=2, s=200, g=1001).replace("inner-vlan 10", "inner-vlan 11"):
            "inner-vlan must equal user-vlan",
        SERVICE.format(i=2, s=200, g=1001).replace("user-vlan 10", "user-vlan 11")
        .replace("inner-vlan 10", "inner-vlan 11"): "has native VLAN 11",
        SERVICE.format(i=2, s=200, g=1001).replace("ont 1", "ont 9"): "The ONT does not exist",
    }
    for line, message in cases.items():
        reply = cli.handle(line)
        assert message in reply.output, line
        assert reply.status == 1
    assert cli.olt.running is before


def test_refused_commit_and_locks_become_failures() -> None:
    cli = _cli()
    _in_interface(cli)
    add = f"ont add 0 1 sn-auth {SERIAL} omci ont-lineprofile-id 1 ont-srvprofile-id 1"
    cli.olt.faults.refuse_commit = "commit blocked by maintenance window"
    assert cli.handle(add).output == "  Failure: commit blocked by maintenance window\n"
    cli.olt.faults.refuse_commit = None
    cli.olt.lock("running", 4242)  # a NETCONF session holds the lock
    assert "locked by session 4242" in cli.handle(add).output
    cli.olt.unlock("running", 4242)
    run(cli, add)


def test_ont_delete_needs_the_services_gone_and_leaves_nothing_behind() -> None:
    cli = _cli()
    base = tables(cli.olt.running)
    cli.olt.add_ont(SERIAL, "0/1/0")
    provision_cli(cli, index=4)
    run(cli, "interface gpon 0/1", "ont port native-vlan 0 1 eth 2 vlan 30")
    assert (cli.handle("ont delete 0 1").output
            == "  Failure: The ONT has service virtual ports\n")
    run(cli, "quit", "undo service-port 4")
    assert "does not exist" in cli.handle("undo service-port 4").output
    run(cli, "interface gpon 0/1", "ont delete 0 1")
    left = tables(cli.olt.running)
    assert {k: left[k] - base[k] for k in left if left[k] != base[k]} == {"tdp": {"tdp-default"}}
    assert oc.links(cli.olt.running) == {}
    assert cli.olt.onts[SERIAL].state == OntState.UNCLAIMED


def test_undo_keeps_what_other_services_share() -> None:
    cli = _cli()
    provision_cli(cli, index=1)
    provision_cli(HuaweiCli(cli.olt, 2), serial="SLNK0000AB02", onu_id=2, index=2, gemport=1002)
    shared = next(iter(cli.olt.view.services.values())).uplink_subif.name
    run(cli, "undo service-port 1")
    assert shared in oc.interfaces(cli.olt.running)  # ONT 2 still forwards through it
    (left,) = cli.olt.view.services.values()
    assert left.complete


def test_native_vlan_replaces_the_old_one() -> None:
    cli = _cli()
    _in_interface(cli)
    run(cli, f"ont add 0 1 sn-auth {SERIAL} omci ont-lineprofile-id 1 ont-srvprofile-id 1",
        "ont port native-vlan 0 1 eth 1 vlan 10", "ont port native-vlan 0 1 eth 1 vlan 11")
    onu = cli.olt.view.onu_by_serial(SERIAL)
    assert onu is not None
    vlans = oc.uni_native_vlans(cli.olt.running, oc.named_onu(onu))
    assert vlans == {1: [("uni-0/1/0-1-eth1.11", 11)]}
    assert "Failure: The ONT does not exist" in cli.handle(
        "ont port native-vlan 0 9 eth 1 vlan 10").output


def test_ont_info_detail_and_by_sn() -> None:
    cli = _cli()
    cli.olt.add_ont(SERIAL, "0/1/0")
    provision_cli(cli)
    detail = run(cli, "display ont info 0 1 0 1")
    for text in ("Run state               : online", "Match state             : match",
                 "SN                      : 534C4E4B0000AB01 (SLNK-0000AB01)",
                 "Description             : flat 1", "Line profile ID         : 10",
                 "Service profile ID      : 20"):
        assert text in detail
    rx = next(line for line in detail.splitlines() if "Rx optical power" in line)
    assert -27.0 < float(rx.split(":")[1]) < -13.0
    assert _steady(run(cli, f"display ont info by-sn {SERIAL}")) == _steady(detail)
    assert "Failure: The ONT does not exist" in cli.handle("display ont info 0 1 0 9").output
    assert "Failure: The port does not exist" in cli.handle("display ont info 0 5 0 all").output
    cli.olt.onts[SERIAL].set_fibre(False)
    assert "LOS" in run(cli, "display ont info 0 1 0 1")
    assert "offline" in run(cli, "display ont info 0 1 0 all")


def test_netconf_services_get_stable_indexes() -> None:
    cli = _cli()
    svc = provision_netconf(cli.olt, name="internet-sub-42")
    out = run(cli, "display service-port all")
    index = cli.olt.service_port_ids["internet-sub-42"]
    assert f"{index:>5}  200 common   gpon 0/1 /0  7    2007" in out
    provision_cli(cli, index=index + 1)
    provision_netconf(cli.olt, serial="SLNK0000AB09", onu_id=9, name="b-first-by-name")
    run(cli, "display service-port all")
    ids = cli.olt.service_port_ids
    assert ids["internet-sub-42"] == index  # unchanged by later services
    assert len(set(ids.values())) == len(ids) == 3
    config = run(cli, "display current-configuration")
    assert (f" service-port {index} vlan 200 gpon 0/1/0 ont 7 gemport {svc.gemport_id} "
            "multi-service user-vlan 20 tag-transform translate-and-add inner-vlan 20 inbound "
            "traffic-table name tdp-100M outbound traffic-table name tdp-100M") in config
    assert ' ont add 0 7 sn-auth "534C4E4B0000AB07" omci ont-lineprofile-id 1 ' in config
    assert ' desc "by netconf"' in config
    assert " ont port native-vlan 0 7 eth 1 vlan 20" in config


def test_current_configuration_replays_to_the_same_configuration() -> None:
    first = _cli()
    provision_cli(first, index=3)
    provision_netconf(first.olt)
    config = run(first, "display current-configuration")
    second = _cli()
    run(second, "enable", "config")
    # The first OLT's NETCONF-made traffic profile has no CLI command: create it as NETCONF.
    second.olt.force_edit(bd.traffic_profile("tdp-100M", 100_000_000))
    for line in config.splitlines():
        if line.startswith(("[", "#", "  <", "return")) or "sysname" in line:
            continue
        run(second, line.strip())
    assert run(second, "display current-configuration") == config
    def services(cli: HuaweiCli) -> set[tuple[object, ...]]:
        return {(s.vani, s.uni, s.c_vlan, s.s_vlan, s.gemport_id, s.profile)
                for s in cli.olt.view.services.values()}

    assert services(second) == services(first)  # forwarder names differ, the rest is equal


def test_save_and_paging_settings() -> None:
    cli = _cli()
    provision_cli(cli)
    assert cli.olt.unsaved
    assert "saved successfully" in run(cli, "save")
    assert not cli.olt.unsaved
    assert cli.page_lines > 0
    run(cli, "screen-length 0 temporary")
    assert cli.page_lines == 0
    run(cli, "scroll 40")
    assert cli.page_lines == 40
    run(cli, "scroll")
    assert cli.page_lines == 0


def test_vlan_and_version_displays() -> None:
    cli = _cli()
    provision_cli(cli)
    vlans = run(cli, "display vlan all")
    assert "   100  smart    common                  1              1" in vlans
    assert "Uplink 0/9/1: 300" in vlans
    assert "VERSION : V3.2.1" in run(cli, "display version")


def test_question_mark_lists_the_view_commands() -> None:
    cli = _cli()
    assert run(cli, "?").split() == ["display", "enable", "quit", "screen-length", "scroll",
                                     "smart", "undo"]
