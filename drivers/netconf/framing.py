"""NETCONF message framing (RFC 6242): pure functions over bytes, no I/O.

Decoding reuses netconf-client's buffer functions; this module adds what an async client
needs around them: an incremental decoder that splits the ``<hello>`` off before the framing
may change, a size limit per message, and conversion of its errors to ``ProtocolError``.
"""

from __future__ import annotations

from typing import Literal, cast

from netconf_client.error import NetconfProtocolError
from netconf_client.parser import parse_messages_10_from_buf, parse_messages_11_from_buf

from drivers.errors import ProtocolError

Framing = Literal["1.0", "1.1"]

EOM = b"]]>]]>"  # base:1.0 end-of-message marker
END_OF_CHUNKS = b"\n##\n"
DEFAULT_MAX_MESSAGE = 64 << 20
_MAX_CHUNK = 4294967295  # RFC 6242 section 4.2


def encode_10(message: bytes) -> bytes:
    """Frame one message for base:1.0 (end-of-message marker)."""
    return message + EOM


def encode_11(message: bytes) -> bytes:
    """Frame one message for base:1.1 (chunked framing; one chunk while it fits)."""
    if not message:
        raise ValueError("a chunked NETCONF message cannot be empty")
    if len(message) <= _MAX_CHUNK:
        return b"\n#%d\n%b%b" % (len(message), message, END_OF_CHUNKS)
    parts = [b"\n#%d\n%b" % (len(message[i:i + _MAX_CHUNK]), message[i:i + _MAX_CHUNK])
             for i in range(0, len(message), _MAX_CHUNK)]
    return b"".join(parts) + END_OF_CHUNKS


def encode(message: bytes, framing: Framing) -> bytes:
    """Frame one message in the given framing."""
    return encode_11(message) if framing == "1.1" else encode_10(message)


class MessageDecoder:
    """Turns received bytes into whole NETCONF messages, incrementally.

    A session starts in base:1.0 framing and its first message is the peer's ``<hello>``.
    Whether chunked framing follows depends on that hello, so after returning it the decoder
    holds any further bytes until ``set_framing`` says how to read them. Construct with
    ``framing=`` to skip the hello step (e.g. to decode a captured stream).

    A message (or a 1.0 buffer without a marker) larger than ``max_message`` bytes raises
    ``ProtocolError``, as does broken framing; the decoder is unusable after either.
    """

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE, *,
                 framing: Framing | None = None) -> None:
        self.max_message = max_message
        self._framing: Framing | None = framing
        self._awaiting_hello = framing is None
        # bytearray: appending a read to a growing 1.0 buffer must not copy the whole of it.
        self._buf = bytearray()
        self._pos = 0  # 1.0: where the marker search resumes (netconf-client's "pos trick")
        self._partial: list[bytes] = []  # 1.1: chunks of the message being assembled
        self._chunk_left = 0
        self._broken = False

    @property
    def framing(self) -> Framing | None:
        """The framing in use, or None until ``set_framing`` after the hello."""
        return self._framing

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages they complete (possibly none)."""
        if self._broken:
            raise ProtocolError("the framing decoder failed earlier; the session is unusable")
        if self._awaiting_hello:
            self._buf += data
            index = self._buf.find(EOM)
            if index == -1:
                self._check_size(len(self._buf) - len(EOM))
                return []
            hello = bytes(self._buf[:index])
            self._check_size(len(hello))
            del self._buf[:index + len(EOM)]
            self._awaiting_hello = False
            return [hello]
        if self._framing is None:
            self._buf += data  # after the hello, before set_framing: just hold it
            self._check_size(len(self._buf))
            return []
        return self._decode(data)

    def set_framing(self, framing: Framing) -> list[bytes]:
        """Choose the framing for everything after the hello; returns messages already held."""
        if self._awaiting_hello:
            raise ProtocolError("set_framing before the hello was received")
        self._framing = framing
        held = bytes(self._buf)
        self._buf = bytearray()
        self._pos = 0
        return self._decode(held) if held else []

    def _decode(self, data: bytes) -> list[bytes]:
        try:
            if self._framing == "1.0":
                self._buf += data
                msgs, buf, self._pos = parse_messages_10_from_buf(self._buf, self._pos, len(data))
                self._buf = cast(bytearray, buf)  # a slice of a bytearray is a bytearray
                self._check_size(len(self._buf) - len(EOM))
            else:
                msgs, buf, partial, self._chunk_left = parse_messages_11_from_buf(
                    bytes(self._buf) + data if self._buf else data, self._partial,
                    self._chunk_left)
                self._buf = bytearray(buf)
                self._partial = partial
                self._check_size(sum(len(p) for p in self._partial))
        except NetconfProtocolError as exc:
            self._broken = True
            raise ProtocolError(f"bad NETCONF framing: {exc}") from exc
        out = [bytes(m) for m in cast(list[bytes], msgs)]
        for m in out:
            self._check_size(len(m))
        return out

    def _check_size(self, size: int) -> None:
        if size > self.max_message:
            self._broken = True
            raise ProtocolError(f"NETCONF message larger than the limit of "
                                f"{self.max_message} bytes")
