"""The configuration engine: edit-config semantics, YANG checks, derivation, yanglint."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from simulator.config import builder as b
from simulator.config import derive as dv
from simulator.config import edit as ed
from simulator.config import validate as vd
from simulator.config.errors import RpcError
from simulator.config.namespaces import GEM, IF, NC, VANI
from simulator.config.removal import removal
from simulator.config.schema import OLT_SCHEMA
from simulator.config.tree import DNode, root_to_xml
from simulator.config.xmlsafe import parse
from tests.conftest import SHARED

HW = dv.Hardware({"ct-0/1/0": "0/1/0", "ct-0/1/1": "0/1/1"}, {"uplink-0/9/0": "0/9/0"},
                 {"0/9/0": frozenset({1000, 2000})})
ONU = b.OnuSpec("0/1/0", 1, "ABCD0000A1B2", "flat 1")
SVC = b.ServiceSpec(ONU, 1, 100, 1000, "0/9/0", 1024, 1024, "tdp-100M")


def factory() -> DNode:
    root = ed.edit(DNode(OLT_SCHEMA), b.factory_config(["0/1/0", "0/1/1"], ["0/9/0"])).root
    vd.validate(root)
    return root


def provisioned() -> DNode:
    base = factory()
    cfg = (b.onu_registration(ONU) + b.traffic_profile("tdp-100M", 100_000_000)
           + b.uni_tagging(ONU, 1, 100) + b.olt_service(SVC))
    root = ed.edit(base, cfg).root
    vd.validate(root, base)
    dv.check_network_services(root, HW)
    return root


def xml(text: str) -> list[etree._Element]:
    return list(parse(f'<config xmlns:nc="{NC}">{text}</config>'.encode()))


def interface_names(root: DNode) -> set[str]:
    ifs = root.get(IF, "interfaces")
    assert ifs is not None
    return {e.leaf("name") or "" for e in ifs.entries(IF, "interface")}


def test_derive_reads_the_service_back() -> None:
    view = dv.derive(provisioned(), HW)
    onu = view.onu_by_serial("abcd0000a1b2")
    assert onu is not None
    assert (onu.port, onu.onu_id, onu.description) == ("0/1/0", 1, "flat 1")
    [svc] = view.services_of(onu.vani)
    assert (svc.uni, svc.c_vlan, svc.s_vlan, svc.uplink) == (1, 100, 1000, "0/9/0")
    assert (svc.gemport_id, svc.alloc_id, svc.profile) == (1024, 1024, "tdp-100M")
    assert svc.complete
    assert svc.uni_subif is not None
    assert svc.uni_subif.rules[0].match == "untagged"


def test_edit_leaves_the_old_tree_untouched() -> None:
    base = factory()
    before = base.count()
    new = ed.edit(base, b.onu_registration(ONU)).root
    assert base.count() == before
    assert new.count() > before
    assert "ont-0/1/0-1" in interface_names(new) - interface_names(base)


def test_merge_changes_one_leaf_only() -> None:
    root = provisioned()
    new = ed.edit(root, xml(
        f'<interfaces xmlns="{IF}"><interface><name>ont-0/1/0-1</name>'
        '<description>flat 1A</description></interface></interfaces>')).root
    assert dv.derive(new, HW).onus["ont-0/1/0-1"].description == "flat 1A"
    assert dv.derive(new, HW).onus["ont-0/1/0-1"].serial == "ABCD0000A1B2"


def test_replace_drops_what_the_new_content_lacks() -> None:
    root = provisioned()
    new = ed.edit(root, xml(
        f'<interfaces xmlns="{IF}"><interface nc:operation="replace"><name>ont-0/1/0-1</name>'
        '<type xmlns:x="urn:bbf:yang:bbf-xpon-if-type">x:v-ani</type></interface>'
        '</interfaces>')).root
    ifs = new.get(IF, "interfaces")
    assert ifs is not None
    entry = ifs.children[(IF, "interface", ("ont-0/1/0-1",))]
    assert entry.get(VANI, "v-ani") is None
    assert entry.leaf("type") == "bbf-xponift:v-ani"


def test_create_refuses_an_existing_entry() -> None:
    with pytest.raises(RpcError) as err:
        ed.edit(provisioned(), xml(
            f'<interfaces xmlns="{IF}"><interface nc:operation="create"><name>ct-0/1/0</name>'
            '</interface></interfaces>'))
    assert err.value.tag == "data-exists"


def test_delete_needs_the_entry_remove_does_not() -> None:
    root = factory()
    delete = f'<interfaces xmlns="{IF}"><interface nc:operation="delete"><name>nope</name>' \
             '</interface></interfaces>'
    with pytest.raises(RpcError) as err:
        ed.edit(root, xml(delete))
    assert err.value.tag == "data-missing"
    result = ed.edit(root, xml(delete.replace('"delete"', '"remove"')))
    assert not result.changed


def test_default_operation_none_changes_nothing_without_operations() -> None:
    root = provisioned()
    result = ed.edit(root, xml(
        f'<interfaces xmlns="{IF}"><interface><name>ont-0/1/0-1</name>'
        '<description>ignored</description></interface></interfaces>'), "none")
    assert not result.changed


def test_unknown_element_and_invalid_value_are_rpc_errors() -> None:
    with pytest.raises(RpcError) as err:
        ed.edit(factory(), xml(f'<interfaces xmlns="{IF}"><interface><name>x</name>'
                               '<colour>red</colour></interface></interfaces>'))
    assert err.value.tag == "unknown-element"
    assert err.value.info["bad-element"] == "colour"
    with pytest.raises(RpcError) as err:
        ed.edit(factory(), xml(
            f'<xpongemtcont xmlns="{GEM}"><gemports><gemport><name>g</name>'
            '<traffic-class>9</traffic-class></gemport></gemports></xpongemtcont>'))
    assert err.value.tag == "invalid-value"
    assert "out of range 0..7" in err.value.message


@pytest.mark.parametrize("vlan", ["0", "4095", "5000", "ten", "-1"])
def test_vlan_ids_outside_1_4094_are_refused(vlan: str) -> None:
    cfg = b.uni_tagging(ONU, 1, 100)
    text = etree.tostring(cfg[0]).decode().replace(">100<", f">{vlan}<")
    with pytest.raises(RpcError) as err:
        ed.edit(factory(), [etree.fromstring(text)])
    assert err.value.tag == "invalid-value"


def test_serial_pattern_is_enforced() -> None:
    bad = b.OnuSpec("0/1/0", 1, "ABCD<xml>", "x")
    with pytest.raises(RpcError) as err:
        ed.edit(factory(), b.onu_registration(bad))
    assert "expected-serial-number" in err.value.message


def test_missing_leafref_target_is_data_missing() -> None:
    base = factory()
    new = ed.edit(base, b.olt_service(SVC)).root  # no v-ani, no profile
    with pytest.raises(RpcError) as err:
        vd.validate(new, base)
    assert err.value.tag == "data-missing"
    assert err.value.app_tag == "instance-required"


def test_removing_a_referenced_entry_is_refused() -> None:
    root = provisioned()
    new = ed.edit(root, b.delete_entries(["ont-0/1/0-1"])).root
    with pytest.raises(RpcError) as err:
        vd.validate(new, root)
    assert err.value.app_tag == "instance-required"


def test_when_violation_is_refused() -> None:
    base = factory()
    text = etree.tostring(b.onu_registration(ONU)[0]).decode().replace(
        "bbf-xponift:v-ani", "ianaift:ethernetCsmacd").replace(
        'xmlns:bbf-xponift="urn:bbf:yang:bbf-xpon-if-type"',
        'xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type"', 1)
    new = ed.edit(base, [etree.fromstring(text)]).root
    with pytest.raises(RpcError) as err:
        vd.validate(new, base)
    assert err.value.app_tag == "when-violated"


def test_duplicate_serial_and_onu_id_are_refused() -> None:
    root = provisioned()
    same_serial = b.onu_registration(b.OnuSpec("0/1/0", 2, "ABCD0000A1B2"))
    same_onu_id = [etree.fromstring(etree.tostring(el).replace(b"0/1/0-1", b"other"))
                   for el in b.onu_registration(b.OnuSpec("0/1/0", 1, "ABCD0000FFFF"))]
    for cfg in (same_serial, same_onu_id):
        new = ed.edit(root, cfg).root
        vd.validate(new, root)
        with pytest.raises(RpcError) as err:
            dv.check_unique(new)
        assert err.value.app_tag == "data-not-unique"


def test_s_vlan_not_on_the_uplink_is_network_service_missing() -> None:
    base = factory()
    svc = b.ServiceSpec(ONU, 1, 100, 3000, "0/9/0", 1024, 1024, "tdp-100M")
    new = ed.edit(base, b.onu_registration(ONU) + b.traffic_profile("tdp-100M", 10**8)
                  + b.olt_service(svc)).root
    vd.validate(new, base)
    with pytest.raises(RpcError) as err:
        dv.check_network_services(new, HW)
    assert err.value.app_tag == "network-service-missing"
    assert "S-VLAN 3000 is not carried by uplink 0/9/0" in err.value.message


def test_continue_on_error_keeps_the_good_entries() -> None:
    result = ed.edit(factory(), xml(
        f'<interfaces xmlns="{IF}">'
        '<interface><name>a</name><description>ok</description></interface>'
        '<interface><name>b</name><enabled>maybe</enabled></interface>'
        '</interfaces>'), error_option="continue-on-error")
    assert {"a"} <= interface_names(result.root)
    assert "b" not in interface_names(result.root)
    assert [e.tag for e in result.errors] == ["invalid-value"]


def test_removing_an_onu_takes_everything_of_it() -> None:
    root = provisioned()
    new = ed.edit(root, removal(root, dv.derive(root, HW), {"ont-0/1/0-1"}, set())).root
    vd.validate(new, root)
    assert interface_names(new) == interface_names(factory())
    assert not dv.derive(new, HW).services


def test_doctype_and_entities_are_refused() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;">]><config>&lol2;</config>')
    with pytest.raises(RpcError) as err:
        parse(bomb)
    assert err.value.tag == "malformed-message"
    with pytest.raises(RpcError):
        parse(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    with pytest.raises(RpcError) as err:
        parse(b"<config><unclosed></config>")
    assert "malformed XML" in err.value.message


@pytest.mark.skipif(shutil.which("yanglint") is None, reason="yanglint not installed "
                    "(apt-get install libyang2-tools)")
@pytest.mark.skipif(not (SHARED / "tools" / "validate-bbf").exists(),
                    reason="../shared/tools/validate-bbf is not beside the repo")
def test_provisioned_config_validates_against_the_bbf_modules(tmp_path: Path) -> None:
    data = root_to_xml(provisioned(), "data")
    doc = tmp_path / "running.xml"
    doc.write_bytes(b"".join(etree.tostring(c) for c in data))
    proc = subprocess.run([str(SHARED / "tools" / "validate-bbf"), str(doc)], check=False,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_default_operation_replace_replaces_the_whole_datastore() -> None:
    root = provisioned()
    only_interfaces = [el for el in b.factory_config(["0/1/0", "0/1/1"], ["0/9/0"])]
    new = ed.edit(root, only_interfaces, "replace").root
    assert interface_names(new) == interface_names(factory())
    assert new.get(GEM, "xpongemtcont") is None  # not in the <config>: gone
