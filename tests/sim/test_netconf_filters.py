"""Subtree filtering, operational state and reply building: the pure halves of the NETCONF face."""

from __future__ import annotations

from lxml import etree

from simulator.config import builder as b
from simulator.config import edit as ed
from simulator.config.errors import RpcError
from simulator.config.namespaces import IF, LT, NC, VANI
from simulator.config.schema import OLT_SCHEMA
from simulator.config.tree import DNode
from simulator.devices import Credentials, DeviceEvent, Olt, OntState, SnmpSettings
from simulator.netconf import filters, rpc, state

ONUS = [b.OnuSpec("0/1/0", n, f"ABCD{n:08X}") for n in range(1, 4)]


def _config() -> DNode:
    edits = b.factory_config(["0/1/0", "0/1/1"], ["0/9/0"])
    for onu in ONUS:
        edits += b.onu_registration(onu)
    return ed.edit(DNode(OLT_SCHEMA), edits).root


def _filter(xml: str) -> list[etree._Element]:
    return list(etree.fromstring(f"<filter>{xml}</filter>"))


def _names(tree: DNode) -> list[str]:
    ifs = tree.get(IF, "interfaces")
    return [] if ifs is None else [e.leaf("name") or "" for e in ifs.entries(IF, "interface")]


def test_no_filter_is_everything_and_empty_filter_is_nothing() -> None:
    root = _config()
    assert filters.apply(root, None) is root
    assert filters.apply(root, []).children == {}


def test_key_content_match_selects_one_whole_entry() -> None:
    root = _config()
    got = filters.apply(root, _filter(
        f'<interfaces xmlns="{IF}"><interface><name>ont-0/1/0-2</name></interface></interfaces>'))
    assert _names(got) == ["ont-0/1/0-2"]
    entry = next(got.get(IF, "interfaces").entries(IF, "interface"))  # type: ignore[union-attr]
    assert entry.get(VANI, "v-ani") is not None  # the whole entry, not just its key
    # The selected subtree is the data tree's own node: nothing was copied.
    ifs = root.get(IF, "interfaces")
    assert ifs is not None
    assert entry is ifs.children[(IF, "interface", ("ont-0/1/0-2",))]


def test_selection_nodes_and_keys() -> None:
    got = filters.apply(_config(), _filter(
        f'<interfaces xmlns="{IF}"><interface><type/></interface></interfaces>'))
    entries = list(got.get(IF, "interfaces").entries(IF, "interface"))  # type: ignore[union-attr]
    assert len(entries) == 4 * 2 + 1 + 2 * 3
    for e in entries:
        assert {k[1] for k in e.children} == {"name", "type"}  # keys come along


def test_non_key_content_match_with_identity_and_selection() -> None:
    got = filters.apply(_config(), _filter(
        '<interfaces><interface><type>bbf-xponift:v-ani</type><name/></interface></interfaces>'))
    assert _names(got) == [o.vani for o in ONUS]
    # Unprefixed identity names resolve too; a value the leaf cannot hold matches nothing.
    got = filters.apply(_config(), _filter(
        "<interfaces><interface><type>v-ani</type></interface></interfaces>"))
    assert len(_names(got)) == 3
    got = filters.apply(_config(), _filter(
        "<interfaces><interface><type>no-such-type</type></interface></interfaces>"))
    assert _names(got) == []


def test_nested_content_match_and_canonical_numbers() -> None:
    vani = f'<v-ani xmlns="{VANI}"><onu-id>02</onu-id></v-ani>'
    got = filters.apply(_config(), _filter(
        f'<interfaces xmlns="{IF}"><interface>{vani}</interface></interfaces>'))
    assert _names(got) == ["ont-0/1/0-2"]
    # A content match filters its own level only: with <name/> beside it every entry shows
    # its name, and only the matching one its v-ani.
    got = filters.apply(_config(), _filter(
        f'<interfaces xmlns="{IF}"><interface><name/>{vani}</interface></interfaces>'))
    ifs = got.get(IF, "interfaces")
    assert ifs is not None
    assert len(ifs.children) == 15
    with_vani = [e.leaf("name") for e in ifs.entries(IF, "interface") if e.get(VANI, "v-ani")]
    assert with_vani == ["ont-0/1/0-2"]


def test_unqualified_and_base_namespace_elements_match_by_local_name() -> None:
    # A filter written inside <get-config xmlns=base> inherits the base namespace.
    got = filters.apply(_config(), _filter(
        f'<interfaces xmlns="{NC}"><interface><name>uplink-0/9/0</name></interface>'
        "</interfaces>"))
    assert _names(got) == ["uplink-0/9/0"]


def test_wrong_namespace_content_match_and_missing_nodes_select_nothing() -> None:
    root = _config()
    assert filters.apply(root, _filter('<interfaces xmlns="urn:other"/>')).children == {}
    got = filters.apply(root, _filter(
        "<interfaces><interface><name>ont-0/1/0-1</name><no-such-leaf>1</no-such-leaf>"
        "<type/></interface></interfaces>"))
    assert _names(got) == []
    got = filters.apply(root, _filter(
        "<interfaces><interface><name>nope</name></interface></interfaces>"))
    assert got.children == {}


def test_sibling_filters_are_merged() -> None:
    got = filters.apply(_config(), _filter(
        "<interfaces><interface><name>ont-0/1/0-1</name><type/></interface>"
        "<interface><name>ont-0/1/0-1</name><enabled/><v-ani/></interface>"
        "<interface><name>ont-0/1/0-3</name></interface></interfaces>"
        f'<link-table xmlns="{LT}"><link-table><to-interface>ont-0/1/0-2</to-interface>'
        "</link-table></link-table>"))
    assert sorted(_names(got)) == ["ont-0/1/0-1", "ont-0/1/0-3"]
    ifs = got.get(IF, "interfaces")
    assert ifs is not None
    first = ifs.children[(IF, "interface", ("ont-0/1/0-1",))]
    assert {k[1] for k in first.children} == {"name", "type", "v-ani"}
    links = got.get(LT, "link-table")
    assert links is not None
    assert [e.leaf("from-interface") for e in links.entries(LT, "link-table")] == ["ani-0/1/0-2"]


def test_big_config_key_lookup() -> None:
    # 1,024 ONUs: a filter for one v-ani returns that one (dict lookup; no timing asserted).
    edits = b.factory_config(["0/1/0"], ["0/9/0"])
    for n in range(1024):
        edits += b.onu_registration(b.OnuSpec("0/1/0", n % 1021, f"ABCD{n:08X}"))
    root = ed.edit(DNode(OLT_SCHEMA), edits).root
    got = filters.apply(root, _filter(
        "<interfaces><interface><name>ani-0/1/0-7</name></interface></interfaces>"))
    assert _names(got) == ["ani-0/1/0-7"]


def _olt() -> Olt:
    return Olt("olt-f", "127.0.0.1", Credentials("admin", "admin"),
               SnmpSettings("public", "private", "user", "authkey12", "privkey12"),
               frozenset({"netconf"}), ["0/1/0"], {"0/9/0": frozenset({1000})})


def test_state_scope_builds_only_the_named_ont() -> None:
    olt = _olt()
    for n in range(5):
        olt.add_ont(f"ABCD{n:08X}", "0/1/0")  # no running loop: ranging is immediate
    flt = _filter("<olt-state><onts><ont><serial>abcd00000003</serial><state/></ont></onts>"
                  "</olt-state>")
    scope = state.olt_scope(flt)
    assert scope.sections == frozenset({"onts"})
    assert scope.serials == frozenset({"ABCD00000003"})
    built = state.olt_state(olt, scope)
    onts = built.path(state.OLT_STATE, "olt-state", "onts")
    assert onts is not None
    assert len(onts.children) == 1
    assert state.olt_scope(_filter("<interfaces/>")) == state.NOTHING
    assert state.olt_scope(None) == state.StateScope()
    assert state.olt_scope(_filter("<olt-state/>")) == state.StateScope()


def test_full_olt_state_shape() -> None:
    olt = _olt()
    olt.add_ont("ABCD00000001", "0/1/0")
    el = etree.fromstring(rpc.reply_data(etree.Element(f"{{{NC}}}rpc", {"message-id": "1"}),
                                         [state.olt_state(olt)]))
    ns = {"pos": state.OLT_STATE, "nc": NC}
    assert el.xpath("//pos:autofind/pos:serial/text()", namespaces=ns) == ["ABCD00000001"]
    assert el.xpath("//pos:ont/pos:state/text()", namespaces=ns) == ["unclaimed"]
    assert el.xpath("//pos:uplink[pos:port='0/9/0']/pos:vlan/text()", namespaces=ns) == ["1000"]
    assert el.xpath("//pos:system/pos:unsaved-changes/text()", namespaces=ns) == ["false"]
    unis = el.xpath("//pos:ont/pos:uni", namespaces=ns)
    assert isinstance(unis, list)
    assert len(unis) == 4


def test_notification_content_and_identity() -> None:
    ev = DeviceEvent("ont-state", "olt", "ABCD00000001", "0/1/0", OntState.LOS, 3, "ont-x")
    tree = state.notification_content(ev, "ct-0/1/0")
    assert tree is not None
    body = etree.fromstring(rpc.notification("2026-01-01T00:00:00Z", tree,
                                             {state.ONU_TYPES_PREFIX: state.ONU_TYPES}))
    ns = {"o": state.ONU_STATES, "p": state.OLT_STATE}
    assert body.xpath("//o:onu-state/text()", namespaces=ns) == [
        "bbf-xpon-onu-types:onu-not-present-with-v-ani"]
    assert body.xpath("//o:onu-state-change/p:ont-state/text()", namespaces=ns) == ["los"]
    assert state.notification_content(DeviceEvent("config-changed", "olt"), None) is None


def test_rpc_error_element_order_and_prefixes() -> None:
    err = RpcError("invalid-value", "bad", path="/if:interfaces/if:interface[if:name='a:b']",
                   app_tag="x", info={"bad-element": "vlan-id"})
    el = rpc.error_element(err)
    assert [etree.QName(c).localname for c in el] == [
        "error-type", "error-tag", "error-severity", "error-app-tag", "error-path",
        "error-message", "error-info"]
    path = el.find(f"{{{NC}}}error-path")
    assert path is not None
    assert path.nsmap.get("if") == IF
    assert "a" not in path.nsmap  # a colon inside a quoted value is no prefix


def test_reply_echoes_every_rpc_attribute() -> None:
    req = rpc.parse_request(
        f'<rpc xmlns="{NC}" xmlns:ex="urn:ex" message-id="7" ex:user="fred"><get/></rpc>'.encode())
    reply = etree.fromstring(rpc.reply_ok(req.rpc))
    assert reply.get("message-id") == "7"
    assert reply.get("{urn:ex}user") == "fred"
    assert reply.find(f"{{{NC}}}ok") is not None
