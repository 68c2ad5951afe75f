"""PHAN URL tokens: an authenticated, encrypted name for a line of service.

A PHAN URL is ``<base URL>/<token>``. The token names one line of service (its code) without
revealing it, and cannot be forged or altered without the key. Keys have ids, so a keyring can
hold the current key plus older ones: rotating the current key keeps old URLs decodable until the
old key is retired (removed from the keyring).

Token format (version 1), before encoding::

    +--------+-------------------+------------------+----------------------------------+
    | header | key id            | nonce            | AES-256-GCM ciphertext + tag     |
    | 1 byte | 1-16 bytes, ASCII | 12 bytes, random | len(line code) + 16 bytes        |
    +--------+-------------------+------------------+----------------------------------+

* ``header``: high nibble is the format version (1); low nibble is the key id length minus 1.
* ``key id``: ``[A-Za-z0-9_-]{1,16}``, names the key in the keyring.
* ``nonce``: 96 random bits, fresh for every token, so the same code gives a different token
  each time (all of which decode to that code).
* The plaintext is the line of service code (``[A-Za-z0-9_.-]{1,32}``, ASCII).
* The associated data is ``header + key id``: the version and key id are authenticated, so they
  cannot be changed or swapped without authentication failing.

The bytes are encoded as base64url without padding, and only the canonical encoding is
accepted. A 12-character code under a 2-character key id gives a 58-character token.

Keys are 256-bit, written as ``KID:BASE64KEY`` entries (standard or URL-safe base64), separated
by commas in an environment variable (``PONCTL_PHAN_KEYS``) or one per line in a file. The
current key (the one new tokens use) is named explicitly (``PONCTL_PHAN_CURRENT``) or is the
last entry. Key material never appears in a ``repr``, ``str`` or error message.

Every failure is a :class:`PhanError` (a ``ValueError``): :class:`PhanKeyError` for keyring
problems, :class:`PhanTokenError` for a token that cannot be decoded, and plain
:class:`PhanError` for an invalid line code or base URL given to :func:`encode`/:func:`url_for`.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CURRENT_ENV_VAR",
    "KEYS_ENV_VAR",
    "TOKEN_VERSION",
    "Keyring",
    "PhanError",
    "PhanKeyError",
    "PhanTokenError",
    "decode",
    "encode",
    "token_from_url",
    "url_for",
    "validate_base_url",
    "validate_key_id",
    "validate_line_code",
]

TOKEN_VERSION = 1
KEYS_ENV_VAR = "PONCTL_PHAN_KEYS"
CURRENT_ENV_VAR = "PONCTL_PHAN_CURRENT"

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_KID_LEN = 16
MAX_CODE_LEN = 32

_KID_RE = re.compile(r"[A-Za-z0-9_-]{1,16}")
_CODE_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")
_MIN_RAW = 1 + 1 + NONCE_BYTES + 1 + TAG_BYTES
_MAX_RAW = 1 + MAX_KID_LEN + NONCE_BYTES + MAX_CODE_LEN + TAG_BYTES
_MAX_TOKEN_CHARS = (_MAX_RAW * 4 + 2) // 3
# Characters refused anywhere in a base URL: it is written into device configuration.
_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f<>\"'`\\{}|^]")


class PhanError(ValueError):
    """A PHAN key, token, line code or base URL is invalid."""


class PhanKeyError(PhanError):
    """The keyring (or its source) is invalid. Messages never include key material."""


class PhanTokenError(PhanError):
    """A token (or URL) cannot be decoded: malformed, unknown key, or failed authentication."""


def validate_key_id(kid: object) -> str:
    """Return ``kid`` if it is a valid key id (1-16 characters ``[A-Za-z0-9_-]``)."""
    if not isinstance(kid, str) or _KID_RE.fullmatch(kid) is None:
        raise PhanKeyError("invalid key id: must be 1-16 characters A-Z a-z 0-9 _ -")
    return kid


def validate_line_code(code: object) -> str:
    """Return ``code`` if it is a valid line of service code (1-32 chars ``[A-Za-z0-9_.-]``)."""
    if not isinstance(code, str):
        raise PhanError(f"line of service code must be a string, not {type(code).__name__}")
    if _CODE_RE.fullmatch(code) is None:
        raise PhanError(
            f"invalid line of service code {code!r}: must be 1-{MAX_CODE_LEN} characters "
            "A-Z a-z 0-9 _ . -"
        )
    return code


def _decode_key(text: str) -> bytes | None:
    """Standard or URL-safe base64 (padding optional) to 32 bytes, or None."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    std = text.replace("-", "+").replace("_", "/")
    std += "=" * (-len(std) % 4)
    try:
        raw = base64.b64decode(std, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == KEY_BYTES else None


class Keyring:
    """Named 256-bit AES keys, one of them current (used for new tokens).

    Immutable: :meth:`with_key`, :meth:`with_current` and :meth:`without` return new keyrings.
    """

    __slots__ = ("_aeads", "_current", "_keys")

    def __init__(self, keys: Mapping[str, bytes], current: str | None = None) -> None:
        if not keys:
            raise PhanKeyError("the PHAN keyring is empty: at least one key is needed")
        checked: dict[str, bytes] = {}
        for kid, key in keys.items():
            validate_key_id(kid)
            if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
                raise PhanKeyError(f"key {kid!r}: key must be {KEY_BYTES} bytes")
            checked[kid] = bytes(key)
        if current is None:
            current = next(reversed(checked))
        elif current not in checked:
            raise PhanKeyError(f"current key id {current!r} is not in the keyring")
        self._keys = checked
        self._aeads = {kid: AESGCM(key) for kid, key in checked.items()}
        self._current = current

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def generate(cls, kid: str) -> Keyring:
        """A keyring holding one new random key named ``kid`` (for ``ponctl phan keygen``)."""
        validate_key_id(kid)
        return cls({kid: secrets.token_bytes(KEY_BYTES)})

    @classmethod
    def from_mapping(
        cls, keys: Mapping[str, bytes | str], current: str | None = None
    ) -> Keyring:
        """Keys given as raw bytes or as base64 text."""
        raw: dict[str, bytes] = {}
        for kid, key in keys.items():
            validate_key_id(kid)
            if isinstance(key, str):
                decoded = _decode_key(key)
                if decoded is None:
                    raise PhanKeyError(f"key {kid!r}: key must be {KEY_BYTES} bytes of base64")
                raw[kid] = decoded
            else:
                raw[kid] = key
        return cls(raw, current)

    @classmethod
    def parse(
        cls, entries: Iterable[tuple[str, str]], *, source: str, current: str | None = None
    ) -> Keyring:
        """Parse ``(label, "KID:BASE64KEY")`` pairs; errors name the label, never the key."""
        keys: dict[str, bytes] = {}
        for label, entry in entries:
            kid, sep, b64 = entry.strip().partition(":")
            kid = kid.strip()
            if not sep:
                raise PhanKeyError(f"{label}: expected KID:BASE64KEY")
            if _KID_RE.fullmatch(kid) is None:
                # The text is not echoed: a swapped "KEY:KID" entry would put the key here.
                raise PhanKeyError(
                    f"{label}: invalid key id (must be 1-16 characters A-Z a-z 0-9 _ -)"
                )
            if kid in keys:
                raise PhanKeyError(f"{label}: duplicate key id {kid!r}")
            key = _decode_key(b64)
            if key is None:
                raise PhanKeyError(f"{label}: key must be {KEY_BYTES} bytes of base64")
            keys[kid] = key
        if not keys:
            raise PhanKeyError(f"{source} holds no keys")
        if current is not None and current not in keys:
            raise PhanKeyError(f"current key id {current!r} is not among the keys in {source}")
        return cls(keys, current)

    @classmethod
    def from_text(cls, text: str, *, source: str, current: str | None = None) -> Keyring:
        """Comma-separated ``KID:BASE64KEY`` entries, as in the environment variable."""
        pieces = [p for p in text.split(",") if p.strip()]
        entries = [(f"{source} entry {n}", p) for n, p in enumerate(pieces, start=1)]
        return cls.parse(entries, source=source, current=current)

    @classmethod
    def from_env(
        cls,
        var: str = KEYS_ENV_VAR,
        *,
        current_var: str = CURRENT_ENV_VAR,
        environ: Mapping[str, str] | None = None,
    ) -> Keyring:
        """Keys from ``$var`` (``kid1:b64,kid2:b64``); current from ``$current_var`` or last."""
        env = os.environ if environ is None else environ
        text = env.get(var, "")
        if not text.strip():
            raise PhanKeyError(f"{var} is not set or empty: no PHAN keys")
        current = env.get(current_var, "").strip() or None
        return cls.from_text(text, source=var, current=current)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, current: str | None = None) -> Keyring:
        """One ``KID:BASE64KEY`` per line; blank lines and ``#`` comments are ignored."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise PhanKeyError(f"cannot read PHAN key file {str(p)!r}: {reason}") from None
        entries = [
            (f"{p} line {n}", line)
            for n, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
        return cls.parse(entries, source=str(p), current=current)

    # -- rotation -----------------------------------------------------------------------------

    def with_key(self, kid: str, key: bytes, *, make_current: bool = True) -> Keyring:
        """A keyring with ``kid`` added (or replaced), current if ``make_current``."""
        keys = {k: v for k, v in self._keys.items() if k != kid}
        keys[kid] = key
        return Keyring(keys, kid if make_current else self._current)

    def with_current(self, kid: str) -> Keyring:
        """The same keys, with ``kid`` current."""
        return Keyring(self._keys, kid)

    def without(self, kid: str) -> Keyring:
        """Retire ``kid``: tokens made with it no longer decode. The current key stays."""
        if kid not in self._keys:
            raise PhanKeyError(f"key id {kid!r} is not in the keyring")
        if kid == self._current:
            raise PhanKeyError(f"key id {kid!r} is current: make another key current first")
        return Keyring({k: v for k, v in self._keys.items() if k != kid}, self._current)

    # -- access -------------------------------------------------------------------------------

    @property
    def current(self) -> str:
        """The id of the key new tokens use."""
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Keyring(key_ids={list(self._keys)!r}, current={self._current!r})"

    __str__ = __repr__

    def export_secrets(self, separator: str = ",") -> str:
        """The key material as ``KID:BASE64KEY`` entries (for keygen output). Handle with care."""
        return separator.join(
            f"{kid}:{base64.b64encode(key).decode('ascii')}" for kid, key in self._keys.items()
        )

    def _aead(self, kid: str) -> AESGCM | None:
        return self._aeads.get(kid)


# -- tokens -----------------------------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(token: str) -> bytes:
    if (
        not token
        or len(token) > _MAX_TOKEN_CHARS
        or _TOKEN_RE.fullmatch(token) is None
        or len(token) % 4 == 1
    ):
        raise PhanTokenError("malformed PHAN token: not base64url text of a plausible length")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise PhanTokenError("malformed PHAN token: not valid base64url") from None
    if _b64url(raw) != token:  # only the canonical encoding: no spare bits set
        raise PhanTokenError("malformed PHAN token: not canonical base64url")
    return raw


def encode(line_code: str, keyring: Keyring) -> str:
    """The token naming ``line_code``, made with the keyring's current key."""
    code = validate_line_code(line_code)
    kid = keyring.current
    kid_bytes = kid.encode("ascii")
    header = bytes([(TOKEN_VERSION << 4) | (len(kid_bytes) - 1)]) + kid_bytes
    nonce = secrets.token_bytes(NONCE_BYTES)
    aead = keyring._aead(kid)
    assert aead is not None
    return _b64url(header + nonce + aead.encrypt(nonce, code.encode("ascii"), header))


def validate_base_url(base_url: str, *, allow_http: bool = False) -> str:
    """The base URL without trailing slashes; https only (http if ``allow_http``)."""
    if not isinstance(base_url, str) or not base_url:
        raise PhanError("PHAN base URL is empty")
    if _URL_FORBIDDEN.search(base_url):
        raise PhanError("PHAN base URL contains whitespace, control or quoting characters")
    if "?" in base_url or "#" in base_url:
        raise PhanError("PHAN base URL must not have a query or fragment")
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018  (validates the port)
    except ValueError:
        raise PhanError(f"PHAN base URL {base_url!r} is not a valid URL") from None
    allowed = ("https", "http") if allow_http else ("https",)
    if parts.scheme.lower() not in allowed:
        need = "https:// (or http:// when allowed)" if allow_http else "https://"
        raise PhanError(f"PHAN base URL {base_url!r} must start with {need}")
    if not parts.hostname:
        raise PhanError(f"PHAN base URL {base_url!r} has no host")
    if "@" in parts.netloc:
        raise PhanError("PHAN base URL must not contain user credentials")
    return base_url.rstrip("/")


def url_for(base_url: str, line_code: str, keyring: Keyring, *, allow_http: bool = False) -> str:
    """``<base URL>/<token>`` for ``line_code``."""
    base = validate_base_url(base_url, allow_http=allow_http)
    return f"{base}/{encode(line_code, keyring)}"


def token_from_url(token_or_url: str) -> str:
    """The token: the input itself, or the last path segment of a URL."""
    if not isinstance(token_or_url, str):
        raise PhanTokenError(f"PHAN token must be a string, not {type(token_or_url).__name__}")
    text = token_or_url.strip()
    if "/" not in text:
        return text
    try:
        path = urlsplit(text).path
    except ValueError:
        raise PhanTokenError("malformed PHAN URL") from None
    segment = path.rstrip("/").rpartition("/")[2]
    if not segment:
        raise PhanTokenError("PHAN URL has no token: its path is empty")
    return segment


def decode(token_or_url: str, keyring: Keyring) -> str:
    """The line of service code named by a token or a PHAN URL; :class:`PhanTokenError` if not."""
    raw = _unb64url(token_from_url(token_or_url))
    if len(raw) < _MIN_RAW:
        raise PhanTokenError("PHAN token is truncated: too short to hold a line code")
    version, kid_len = raw[0] >> 4, (raw[0] & 0x0F) + 1
    if version != TOKEN_VERSION:
        raise PhanTokenError(
            f"unsupported PHAN token version {version} (this ponctl reads version "
            f"{TOKEN_VERSION})"
        )
    aad_end = 1 + kid_len
    body = raw[aad_end + NONCE_BYTES :]
    if len(body) < TAG_BYTES + 1:
        raise PhanTokenError("PHAN token is truncated: too short to hold a line code")
    kid_raw = raw[1:aad_end]
    kid = kid_raw.decode("ascii", errors="replace")
    if _KID_RE.fullmatch(kid) is None:
        raise PhanTokenError("malformed PHAN token: the key id is not valid")
    aead = keyring._aead(kid)
    if aead is None:
        raise PhanTokenError(f"key id {kid!r} is not in the keyring: was the key retired?")
    try:
        plain = aead.decrypt(raw[aad_end:aad_end + NONCE_BYTES], body, raw[:aad_end])
    except InvalidTag:
        raise PhanTokenError(
            "PHAN token failed authentication: it was altered, forged, or made with another key"
        ) from None
    code = plain.decode("ascii", errors="replace")
    if _CODE_RE.fullmatch(code) is None:
        raise PhanTokenError("PHAN token decrypted to an invalid line of service code")
    return code
