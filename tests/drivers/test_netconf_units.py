"""Pure halves of the NETCONF driver: framing, request building, reply parsing, diffs.

Framed input here is written out by hand (not produced by the encoder under test), so that an
encoder and decoder sharing a mistake cannot agree with each other.
"""

from __future__ import annotations

import pytest
from lxml import etree

from drivers.errors import NetconfLockDeniedError, NetconfRejectedError, ProtocolError
from drivers.netconf import canon, framing, rpc
from drivers.netconf.driver import capabilities_from_hello
from drivers.netconf.framing import MessageDecoder

NC = rpc.NC
HELLO = (f'<hello xmlns="{NC}"><capabilities><capability>{rpc.BASE_10}</capability>'
         f"<capability>{rpc.BASE_11}</capability></capabilities><session-id>7</session-id>"
         "</hello>").encode()
M1 = f'<rpc-reply xmlns="{NC}" message-id="1"><ok/></rpc-reply>'.encode()
M2 = f'<rpc-reply xmlns="{NC}" message-id="2"><data><x>]]&gt;]]&gt;#</x></data></rpc-reply>' \
    .encode()


def chunked(message: bytes, sizes: list[int]) -> bytes:
    """``message`` in chunks of the given sizes (the last takes the rest), by hand."""
    out, i = b"", 0
    for size in [*sizes, len(message)]:
        piece = message[i:i + size]
        if piece:
            out += b"\n#" + str(len(piece)).encode() + b"\n" + piece
        i += len(piece)
    return out + b"\n##\n"


def decode_split(stream: bytes, framing_after_hello: framing.Framing, cut: int) -> list[bytes]:
    """Feed ``stream`` in two reads split at ``cut``; switch framing after the hello."""
    dec = MessageDecoder()
    out: list[bytes] = []
    for part in (stream[:cut], stream[cut:]):
        got = dec.feed(part)
        out += got
        if got and dec.framing is None:
            out += dec.set_framing(framing_after_hello)
    return out


# ---- framing ---------------------------------------------------------------------------------

def test_base10_stream_split_at_every_byte() -> None:
    stream = HELLO + b"]]>]]>" + M1 + b"]]>]]>" + M2 + b"]]>]]>"
    for cut in range(len(stream) + 1):
        assert decode_split(stream, "1.0", cut) == [HELLO, M1, M2], cut


def test_base11_stream_split_at_every_byte() -> None:
    # The hello is always end-of-message framed; chunked framing starts right after it.
    stream = HELLO + b"]]>]]>" + chunked(M1, []) + chunked(M2, [1, 9, 30])
    for cut in range(len(stream) + 1):
        assert decode_split(stream, "1.1", cut) == [HELLO, M1, M2], cut


def test_byte_by_byte_both_framings() -> None:
    cases: list[tuple[framing.Framing, bytes]] = [
        ("1.0", M1 + b"]]>]]>" + M2 + b"]]>]]>"),
        ("1.1", chunked(M1, [3]) + chunked(M2, [50]))]
    for after, body in cases:
        dec = MessageDecoder()
        out: list[bytes] = []
        for byte in HELLO + b"]]>]]>" + body:
            got = dec.feed(bytes([byte]))
            out += got
            if got and dec.framing is None:
                out += dec.set_framing(after)
        assert out == [HELLO, M1, M2]


def test_bytes_after_the_hello_wait_for_the_framing_decision() -> None:
    dec = MessageDecoder()
    assert dec.feed(HELLO + b"]]>]]>" + chunked(M1, [5])) == [HELLO]
    assert dec.feed(chunked(M2, [])) == []  # held until set_framing
    assert dec.set_framing("1.1") == [M1, M2]
    with pytest.raises(ProtocolError):
        MessageDecoder().set_framing("1.1")  # no hello yet


def test_encoders() -> None:
    assert framing.encode_10(M1) == M1 + b"]]>]]>"
    assert framing.encode_11(b"abc") == b"\n#3\nabc\n##\n"
    assert framing.encode(b"abc", "1.1") == b"\n#3\nabc\n##\n"
    with pytest.raises(ValueError, match="empty"):
        framing.encode_11(b"")
    dec = MessageDecoder(framing="1.1")
    assert dec.feed(framing.encode_11(M2)) == [M2]


@pytest.mark.parametrize("garbage", [b"\n#zz\nabcdefghijklmn", b"\n#0\n", b"\n##\n",
                                     b"no header at all, long enough"])
def test_bad_chunk_framing_is_a_protocol_error(garbage: bytes) -> None:
    dec = MessageDecoder(framing="1.1")
    with pytest.raises(ProtocolError, match="framing"):
        dec.feed(garbage)
    with pytest.raises(ProtocolError):
        dec.feed(b"\n#1\na\n##\n")  # unusable afterwards


def test_size_limit_per_message() -> None:
    big = b"<x>" + b"a" * 200 + b"</x>"
    with pytest.raises(ProtocolError, match="limit"):
        MessageDecoder(100, framing="1.0").feed(big + b"]]>]]>")
    with pytest.raises(ProtocolError, match="limit"):
        MessageDecoder(100, framing="1.0").feed(big)  # no marker yet: the buffer counts
    with pytest.raises(ProtocolError, match="limit"):
        MessageDecoder(100, framing="1.1").feed(chunked(big, [50, 50, 50]))
    dec = MessageDecoder(100, framing="1.1")
    with pytest.raises(ProtocolError, match="limit"):  # noqa: PT012 - grows chunk by chunk
        for _ in range(8):
            dec.feed(b"\n#40\n" + b"b" * 40)
    with pytest.raises(ProtocolError, match="limit"):
        MessageDecoder(100).feed(b"<hello>" + b" " * 200)
    assert MessageDecoder(300, framing="1.1").feed(chunked(big, [100])) == [big]


# ---- parsing replies -------------------------------------------------------------------------

LAUGHS = ('<?xml version="1.0"?><!DOCTYPE rpc-reply [<!ENTITY lol "lol">'
          '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
          f'<rpc-reply xmlns="{NC}" message-id="1"><data><x>&lol2;</x></data></rpc-reply>')
XXE = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       f'<rpc-reply xmlns="{NC}" message-id="1"><data><x>&xxe;</x></data></rpc-reply>')
REMOTE_DTD = ('<?xml version="1.0"?><!DOCTYPE rpc-reply SYSTEM "http://example.invalid/x.dtd">'
              f'<rpc-reply xmlns="{NC}" message-id="1"><ok/></rpc-reply>')


@pytest.mark.parametrize("hostile", [LAUGHS, XXE, REMOTE_DTD])
def test_hardened_parser_refuses_doctype_and_entities(hostile: str) -> None:
    with pytest.raises(ProtocolError, match="DOCTYPE"):
        rpc.parse_reply(hostile.encode())


def test_undeclared_entity_and_malformed_xml_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="malformed"):
        rpc.parse_reply(f'<rpc-reply xmlns="{NC}" message-id="1"><data>&xxe;</data>'
                        "</rpc-reply>".encode())
    with pytest.raises(ProtocolError, match="malformed"):
        rpc.parse_reply(b"<rpc-reply")
    with pytest.raises(ProtocolError, match="unexpected message"):
        rpc.parse_reply(b"<rpc-reply/>")  # no namespace: not NETCONF


def test_reply_with_errors_and_warnings() -> None:
    raw = f"""<rpc-reply xmlns="{NC}" message-id="5" xmlns:if="urn:if">
      <rpc-error>
        <error-type>application</error-type><error-tag>invalid-value</error-tag>
        <error-severity>error</error-severity><error-app-tag>range</error-app-tag>
        <error-path>/if:interfaces/if:interface[if:name='a']/vlan-id</error-path>
        <error-message xml:lang="en">VLAN 5000 is out of range</error-message>
        <error-info><bad-element>vlan-id</bad-element><x><y>1</y></x></error-info>
      </rpc-error>
      <rpc-error><error-type>application</error-type><error-tag>operation-failed</error-tag>
        <error-severity>warning</error-severity><error-message>just saying</error-message>
      </rpc-error>
    </rpc-reply>""".encode()
    reply = rpc.parse_reply(raw)
    assert reply.message_id == "5"
    assert not reply.ok
    assert len(reply.errors) == 1
    assert len(reply.warnings) == 1
    e = reply.errors[0]
    assert (e.type, e.tag, e.severity, e.app_tag) == ("application", "invalid-value", "error",
                                                      "range")
    assert e.path == "/if:interfaces/if:interface[if:name='a']/vlan-id"
    assert e.message == "VLAN 5000 is out of range"
    assert e.info["bad-element"] == "vlan-id"
    assert "<y>1</y>" in e.info["x"]
    with pytest.raises(NetconfRejectedError) as info:
        rpc.check(reply, "olt-9")
    assert info.value.tag == "invalid-value"
    assert info.value.raw == raw
    assert info.value.host == "olt-9"
    assert not isinstance(info.value, NetconfLockDeniedError)
    # Warnings alone do not make a rejection.
    only_warning = raw.replace(b"<error-severity>error</error-severity>",
                               b"<error-severity>warning</error-severity>")
    assert rpc.check(rpc.parse_reply(only_warning)) is not None


def test_lock_denied_is_its_own_type() -> None:
    raw = (f'<rpc-reply xmlns="{NC}" message-id="3"><rpc-error><error-type>protocol'
           "</error-type><error-tag>lock-denied</error-tag><error-severity>error"
           "</error-severity><error-message>locked by 12</error-message><error-info>"
           "<session-id>12</session-id></error-info></rpc-error></rpc-reply>").encode()
    with pytest.raises(NetconfLockDeniedError) as info:
        rpc.check(rpc.parse_reply(raw))
    assert isinstance(info.value, NetconfRejectedError)
    assert info.value.tag == "lock-denied"
    assert info.value.holder == "12"


def test_hello_and_notification_parsing() -> None:
    hello = rpc.parse_hello(HELLO)
    assert hello.session_id == 7
    assert rpc.BASE_11 in hello.capabilities
    with pytest.raises(ProtocolError, match="session-id"):
        rpc.parse_hello(HELLO.replace(b"<session-id>7</session-id>", b""))
    with pytest.raises(ProtocolError, match="neither"):
        rpc.parse_hello(HELLO.replace(b"netconf:base:1.", b"netconf:base:9.")
                        .replace(b"xml:ns:netconf:base:9.", b"xml:ns:netconf:base:1."))
    note = rpc.parse_message(
        b'<notification xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0">'
        b"<eventTime>2026-01-01T00:00:00Z</eventTime>"
        b'<onu-state-change xmlns="urn:o"><detected-serial-number>ABCD00000001'
        b"</detected-serial-number><x><onu-id>3</onu-id></x></onu-state-change></notification>")
    assert isinstance(note, rpc.Notification)
    assert note.kind == "onu-state-change"
    assert note.event_time == "2026-01-01T00:00:00Z"
    assert note.fields == {"detected-serial-number": "ABCD00000001", "onu-id": "3"}


# ---- building requests -----------------------------------------------------------------------

def _op(build: rpc.Builder) -> etree._Element:
    root = rpc.parse_xml(build("42"))
    assert root.tag == f"{{{NC}}}rpc"
    assert root.get("message-id") == "42"
    return root[0]


def test_builders_produce_well_formed_rpcs() -> None:
    edit = _op(rpc.edit_config(rpc.parse_fragment('<a xmlns="urn:a"><b>1</b></a>'),
                               "candidate", default_operation="replace",
                               error_option="rollback-on-error"))
    assert edit.tag == f"{{{NC}}}edit-config"
    assert edit.find(f"{{{NC}}}target/{{{NC}}}candidate") is not None
    assert edit.findtext(f"{{{NC}}}default-operation") == "replace"
    assert edit.findtext(f"{{{NC}}}error-option") == "rollback-on-error"
    assert edit.find(f"{{{NC}}}config/{{urn:a}}a/{{urn:a}}b") is not None
    commit = _op(rpc.commit(confirmed=True, confirm_timeout=30, persist="t1", persist_id="t0"))
    assert [etree.QName(c).localname for c in commit] == [
        "confirmed", "confirm-timeout", "persist", "persist-id"]
    flt = _op(rpc.get_config("running", '<interfaces xmlns="urn:if"/>'))
    assert flt.find(f"{{{NC}}}filter").get("type") == "subtree"  # type: ignore[union-attr]
    for build in (rpc.lock("running"), rpc.unlock("candidate"), rpc.validate(),
                  rpc.discard_changes(), rpc.close_session(), rpc.kill_session(3),
                  rpc.cancel_commit("t1"), rpc.copy_config("startup", "running"),
                  rpc.delete_config("startup"), rpc.get(), rpc.create_subscription()):
        _op(build)


def test_nothing_a_caller_passes_can_inject_markup() -> None:
    with pytest.raises(ValueError, match="well-formed"):
        rpc.parse_fragment("<a/></config></edit-config><kill-session><session-id>1"
                           "</session-id></kill-session><edit-config><config><a/>")
    with pytest.raises(ValueError, match="well-formed"):
        rpc.parse_fragment('<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')
    with pytest.raises(ValueError, match="text outside"):
        rpc.parse_fragment("loose text<a/>")
    with pytest.raises(ValueError, match="persist"):
        rpc.commit(confirmed=True, persist="x</persist><bad/>")
    with pytest.raises(ValueError, match="datastore"):
        rpc.lock("running/><kill-session")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="option"):
        rpc.edit_config([], default_operation="merge</x>")  # type: ignore[arg-type]


def test_parse_fragment_accepts_config_wrapper_and_declaration() -> None:
    plain = rpc.parse_fragment('<a xmlns="urn:a"/><b xmlns="urn:b"/>')
    wrapped = rpc.parse_fragment(f'<?xml version="1.0"?><config xmlns="{NC}">'
                                 '<a xmlns="urn:a"/><b xmlns="urn:b"/></config>')
    assert [e.tag for e in plain] == [e.tag for e in wrapped] == ["{urn:a}a", "{urn:b}b"]
    assert rpc.parse_fragment("") == []


def test_capabilities_from_hello() -> None:
    olt = capabilities_from_hello([rpc.BASE_10, rpc.BASE_11, rpc.CANDIDATE,
                                   rpc.CONFIRMED_COMMIT, rpc.VALIDATE_11, rpc.NOTIFICATION,
                                   "urn:x?module=x&revision=2020-01-01"])
    assert (olt.candidate, olt.confirmed_commit, olt.validate, olt.notifications,
            olt.transactions, olt.locking, olt.rollback) == (True, True, True, True, True,
                                                             True, "exact")
    gw = capabilities_from_hello([rpc.BASE_10, rpc.WRITABLE_RUNNING])
    assert (gw.candidate, gw.confirmed_commit, gw.transactions, gw.rollback) == (
        False, False, False, "best-effort")
    assert capabilities_from_hello([rpc.BASE_10, rpc.ROLLBACK_ON_ERROR]).transactions


# ---- canonical text, diff and the schema-less merge ------------------------------------------

def test_canonical_lines_ignore_prefixes_and_whitespace() -> None:
    a = rpc.parse_fragment('<p:a xmlns:p="urn:a">\n  <p:b q="2" r="1">x</p:b>\n</p:a>')
    b = rpc.parse_fragment('<a xmlns="urn:a"><b r="1" q="2">x</b></a>')
    assert canon.canonical_lines(a) == canon.canonical_lines(b) == [
        '<a xmlns="urn:a">', '  <b q="2" r="1">x</b>', "</a>"]
    assert canon.unified_diff(canon.canonical_lines(a), canon.canonical_lines(b)) == ()
    c = rpc.parse_fragment('<a xmlns="urn:a"><b r="1" q="2">y</b></a>')
    diff = canon.unified_diff(canon.canonical_lines(a), canon.canonical_lines(c))
    assert "-  <b q=\"2\" r=\"1\">x</b>" in diff
    assert "+  <b q=\"2\" r=\"1\">y</b>" in diff


def test_merge_containers_lists_and_operations() -> None:
    running = rpc.parse_fragment(
        '<gw xmlns="urn:g"><url>old</url><vlan>7</vlan></gw>'
        '<ifs xmlns="urn:i"><if><name>a</name><mtu>1500</mtu></if>'
        '<if><name>c</name><mtu>1500</mtu></if></ifs>')
    merged = canon.merge(running, rpc.parse_fragment(
        '<gw xmlns="urn:g"><url>new</url></gw>'
        '<ifs xmlns="urn:i"><if><name>b</name><mtu>9000</mtu></if>'
        '<if><name>a</name><mtu>1600</mtu></if></ifs>'))
    text = "\n".join(canon.canonical_lines(merged))
    assert "<url>new</url>" in text
    assert "<vlan>7</vlan>" in text  # a container keeps what the payload does not name
    assert text.count("<if>") == 3  # b is a new entry, a is updated in place
    assert "<mtu>1600</mtu>" in text
    assert text.count("1500") == 1  # c is untouched
    removed = canon.merge(merged, rpc.parse_fragment(
        f'<ifs xmlns="urn:i" xmlns:nc="{NC}"><if nc:operation="remove"><name>b</name></if>'
        "</ifs>"))
    assert "<name>b</name>" not in "\n".join(canon.canonical_lines(removed))
    # The documented limit: with one instance, a list entry is taken as a container.
    one = canon.merge(rpc.parse_fragment('<l xmlns="urn:l"><e><k>1</k></e></l>'),
                      rpc.parse_fragment('<l xmlns="urn:l"><e><k>2</k></e></l>'))
    assert "\n".join(canon.canonical_lines(one)).count("<e>") == 1
    replaced = canon.merge(running, rpc.parse_fragment('<gw xmlns="urn:g"><url>x</url></gw>'),
                           replace=True)
    assert canon.canonical_lines(replaced) == ['<gw xmlns="urn:g">', "  <url>x</url>", "</gw>"]
