"""NETCONF message framing over SSH (RFC 6242): pure functions and incremental decoders.

Two framings exist. The hello, and every message of a base:1.0 session, ends with the
end-of-message marker ``]]>]]>``. Once both hellos advertise base:1.1, messages are sent in
chunks: ``\\n#<size>\\n<size bytes>`` repeated, closed by ``\\n##\\n``.

A decoder takes bytes as they arrive and hands out complete messages one at a time, so the
caller can switch framing right after the hello without misreading what follows it. Nothing
here does I/O.
"""

from __future__ import annotations

from typing import Protocol

EOM = b"]]>]]>"
MAX_CHUNK = 4294967295  # RFC 6242 section 4.2: chunk-size is 1..4294967295
_MAX_SIZE_DIGITS = 10
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024


class FramingError(Exception):
    """The peer broke the framing; the session cannot be resynchronised and must close."""


class MessageTooBig(FramingError):
    """A message is larger than the decoder's limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of at least {size} bytes exceeds the {limit}-byte limit")
        self.size = size
        self.limit = limit


def encode_eom(message: bytes) -> bytes:
    """Frame one message for base:1.0 (and every hello)."""
    return message + EOM


def encode_chunked(message: bytes, max_chunk: int = 65536) -> bytes:
    """Frame one message for base:1.1, in chunks of at most ``max_chunk`` bytes."""
    if not message:
        raise ValueError("a chunked message needs at least one byte")
    if not 1 <= max_chunk <= MAX_CHUNK:
        raise ValueError(f"max_chunk must be 1..{MAX_CHUNK}")
    parts: list[bytes] = []
    for start in range(0, len(message), max_chunk):
        chunk = message[start:start + max_chunk]
        parts.append(b"\n#%d\n" % len(chunk))
        parts.append(chunk)
    parts.append(b"\n##\n")
    return b"".join(parts)


class Decoder(Protocol):
    """An incremental decoder: ``feed`` bytes, then take messages with ``next`` until None."""

    def feed(self, data: bytes) -> None: ...

    def next(self) -> bytes | None: ...

    def rest(self) -> bytes: ...


class EomDecoder:
    """Decoder for ``]]>]]>``-terminated messages (hello and base:1.0)."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_message = max_message
        self._buf = bytearray()
        self._scan = 0  # where the marker search resumes: bytes before it hold no marker

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> bytes | None:
        """The next complete message, or None; raises MessageTooBig."""
        end = self._buf.find(EOM, self._scan)
        if end < 0:
            # A marker may straddle two reads: resume the search a marker's length back.
            self._scan = max(0, len(self._buf) - len(EOM) + 1)
            if len(self._buf) > self.max_message + len(EOM):
                raise MessageTooBig(len(self._buf), self.max_message)
            return None
        if end > self.max_message:
            raise MessageTooBig(end, self.max_message)
        message = bytes(self._buf[:end])
        del self._buf[:end + len(EOM)]
        self._scan = 0
        return message

    def rest(self) -> bytes:
        """Bytes received after the last message taken (to hand to the next decoder)."""
        return bytes(self._buf)


class ChunkedDecoder:
    """Decoder for RFC 6242 chunked framing (base:1.1).

    Chunk sizes are checked against the message limit from the header alone, so an oversized
    message is refused before its data arrives.
    """

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE, initial: bytes = b"") -> None:
        self.max_message = max_message
        self._buf = bytearray(initial)
        self._chunks: list[bytes] = []
        self._size = 0  # bytes of the current message so far
        self._want = 0  # data bytes still expected of the current chunk

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> bytes | None:
        """The next complete message, or None; raises FramingError or MessageTooBig."""
        while True:
            if self._want:
                if len(self._buf) < self._want:
                    return None
                self._chunks.append(bytes(self._buf[:self._want]))
                del self._buf[:self._want]
                self._want = 0
            header = self._header()
            if header is None:
                return None
            if header == 0:
                if not self._chunks:
                    raise FramingError("end-of-chunks marker before any chunk")
                message = b"".join(self._chunks)
                self._chunks, self._size = [], 0
                return message
            self._size += header
            if self._size > self.max_message:
                raise MessageTooBig(self._size, self.max_message)
            self._want = header

    def _header(self) -> int | None:
        """Consume one chunk header: its size, 0 for end-of-chunks, None if incomplete."""
        buf = self._buf
        if not buf:
            return None
        if buf[0:1] != b"\n":
            raise FramingError(f"expected a chunk header, got {bytes(buf[:16])!r}")
        if len(buf) < 2:
            return None
        if buf[1:2] != b"#":
            raise FramingError(f"expected '#' in a chunk header, got {bytes(buf[:16])!r}")
        if len(buf) < 3:
            return None
        if buf[2:3] == b"#":
            if len(buf) < 4:
                return None
            if buf[3:4] != b"\n":
                raise FramingError("end-of-chunks marker not followed by a newline")
            del buf[:4]
            return 0
        end = buf.find(b"\n", 2, 3 + _MAX_SIZE_DIGITS)
        if end < 0:
            digits = bytes(buf[2:3 + _MAX_SIZE_DIGITS])
            if not digits.isdigit() or len(digits) > _MAX_SIZE_DIGITS:
                raise FramingError(f"bad chunk size {digits[:16]!r}")
            return None
        digits = bytes(buf[2:end])
        # chunk-size = 1*DIGIT1 0*DIGIT: no sign, no leading zero, no spaces.
        if not digits.isdigit() or digits[0:1] == b"0":
            raise FramingError(f"bad chunk size {digits!r}")
        size = int(digits)
        if size > MAX_CHUNK:
            raise FramingError(f"chunk size {size} exceeds {MAX_CHUNK}")
        del buf[:end + 1]
        return size

    def rest(self) -> bytes:
        return bytes(self._buf)

    @property
    def in_message(self) -> bool:
        """True while part of a message has been read (EOF now means a truncated message)."""
        return bool(self._chunks or self._want or self._buf)


def decode_all(decoder: Decoder, data: bytes) -> list[bytes]:
    """Feed ``data`` and return every message it completes (a convenience for tests)."""
    decoder.feed(data)
    out: list[bytes] = []
    while (message := decoder.next()) is not None:
        out.append(message)
    return out
