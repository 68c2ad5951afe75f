"""The NETCONF framing decoders and encoders (RFC 6242), byte by byte."""

from __future__ import annotations

import pytest

from simulator.netconf import framing as fr


def test_eom_round_trip_and_split_marker() -> None:
    data = fr.encode_eom(b"<a/>") + fr.encode_eom(b"<b/>")
    assert data == b"<a/>]]>]]><b/>]]>]]>"
    # Any split point, even inside the marker, yields the same messages.
    for cut in range(len(data) + 1):
        dec = fr.EomDecoder()
        got = fr.decode_all(dec, data[:cut]) + fr.decode_all(dec, data[cut:])
        assert got == [b"<a/>", b"<b/>"], cut


def test_eom_one_byte_at_a_time() -> None:
    dec = fr.EomDecoder()
    got: list[bytes] = []
    for byte in fr.encode_eom(b"<hello/>"):
        got += fr.decode_all(dec, bytes([byte]))
    assert got == [b"<hello/>"]
    assert dec.rest() == b""


def test_eom_rest_hands_over_after_hello() -> None:
    dec = fr.EomDecoder()
    dec.feed(b"<hello/>]]>]]>\n#4\n<a/>\n##\n")
    assert dec.next() == b"<hello/>"
    chunked = fr.ChunkedDecoder(initial=dec.rest())
    assert chunked.next() == b"<a/>"


def test_eom_too_big() -> None:
    dec = fr.EomDecoder(max_message=10)
    dec.feed(b"x" * 10)
    assert dec.next() is None
    dec.feed(b"y" * 20)
    with pytest.raises(fr.MessageTooBig):
        dec.next()
    dec = fr.EomDecoder(max_message=10)
    with pytest.raises(fr.MessageTooBig):
        fr.decode_all(dec, b"z" * 11 + fr.EOM)


def test_chunked_round_trip_many_chunks() -> None:
    message = bytes(range(256)) * 40
    data = fr.encode_chunked(message, max_chunk=1000)
    assert data.count(b"\n#") == 12  # 11 chunks + end marker
    for cut in (0, 1, 2, 3, 5, 7, 1000, len(data) - 2, len(data)):
        dec = fr.ChunkedDecoder()
        assert fr.decode_all(dec, data[:cut]) + fr.decode_all(dec, data[cut:]) == [message]


def test_chunked_byte_at_a_time_and_rfc_example() -> None:
    # RFC 6242 section 4.2's example: one message in two chunks.
    data = b'\n#4\n<rpc\n#18\n message-id="102"\n\n#79\n' \
        b'     xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">\n  <close-session/>\n</rpc>' \
        b"\n##\n"
    dec = fr.ChunkedDecoder()
    got: list[bytes] = []
    for byte in data:
        got += fr.decode_all(dec, bytes([byte]))
    assert len(got) == 1
    assert got[0].startswith(b'<rpc message-id="102"')
    assert got[0].endswith(b"</rpc>")
    assert not dec.in_message


@pytest.mark.parametrize("garbage", [
    b"<rpc/>",  # base:1.0 framing on a base:1.1 session
    b"\n#abc\n",  # not a number
    b"\n#0\n",  # chunk-size starts at 1
    b"\n#012\n",  # no leading zeros
    b"\n#-1\n",
    b"\n# 5\n",
    b"\n#12345678901\n",  # more than 10 digits
    b"\n#4294967296\nxxxx",  # above 2^32-1
    b"\n##\n",  # end of chunks before any chunk
    b"\n#\n",  # truncated header
    b"\n##x",
    b"\n#4\nabcd\n#x",
    b"\r\n#4\nabcd",
])
def test_chunked_garbage_is_a_framing_error(garbage: bytes) -> None:
    dec = fr.ChunkedDecoder()
    with pytest.raises(fr.FramingError):
        fr.decode_all(dec, garbage)


def test_chunked_partial_header_waits() -> None:
    dec = fr.ChunkedDecoder()
    assert fr.decode_all(dec, b"\n#12") == []
    assert dec.in_message
    assert fr.decode_all(dec, b"3\n" + b"a" * 123 + b"\n##\n") == [b"a" * 123]


def test_chunked_too_big_is_refused_from_the_header() -> None:
    dec = fr.ChunkedDecoder(max_message=100)
    with pytest.raises(fr.MessageTooBig) as info:
        fr.decode_all(dec, b"\n#50\n" + b"a" * 50 + b"\n#51\n")  # no data for the 2nd chunk yet
    assert info.value.limit == 100
    assert info.value.size == 101


def test_encode_chunked_refuses_empty() -> None:
    with pytest.raises(ValueError, match="at least one byte"):
        fr.encode_chunked(b"")
