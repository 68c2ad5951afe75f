"""PHAN URL tokens: round trip, URL forms, tampering, key rotation and keyring loading."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from agent import phan
from agent.phan import Keyring, PhanError, PhanKeyError, PhanTokenError, decode, encode, url_for

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
K1_B64 = base64.b64encode(K1).decode()
K2_B64 = base64.b64encode(K2).decode()
BASE = "https://phan.example.net/p"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


@pytest.fixture
def ring() -> Keyring:
    return Keyring({"k1": K1})


# -- round trip ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["L", "LOS-000123", "los_2026.a-b", "A" * 32, "0"])
def test_round_trip(ring: Keyring, code: str) -> None:
    assert decode(encode(code, ring), ring) == code


def test_token_is_compact_and_url_safe(ring: Keyring) -> None:
    token = encode("LOS-00012345", ring)
    assert len(token) < 60
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert "LOS" not in token


def test_token_layout(ring: Keyring) -> None:
    raw = unb64url(encode("LOS-1", ring))
    assert raw[0] == (phan.TOKEN_VERSION << 4) | (len("k1") - 1)
    assert raw[1:3] == b"k1"
    assert len(raw) == 1 + 2 + 12 + len("LOS-1") + 16


def test_same_code_gives_different_tokens_that_decode_equal(ring: Keyring) -> None:
    tokens = {encode("LOS-1", ring) for _ in range(20)}
    assert len(tokens) == 20
    assert {decode(t, ring) for t in tokens} == {"LOS-1"}


@pytest.mark.parametrize(
    "code",
    ["", "A" * 33, "a<b", "a&amp;", "<x/>", "a'b", 'a"b', "a\nb", "a\rb", "a b", "a;b", "a|b",
     "a/b", "code\n", "é", "a\x00b", "a:b"],
)
def test_bad_codes_refused_at_encode(ring: Keyring, code: str) -> None:
    with pytest.raises(PhanError, match="invalid line of service code"):
        encode(code, ring)
    with pytest.raises(PhanError, match="invalid line of service code"):
        url_for(BASE, code, ring)


def test_non_string_code_refused(ring: Keyring) -> None:
    with pytest.raises(PhanError, match="must be a string"):
        encode(123, ring)  # type: ignore[arg-type]


# -- URL forms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "prefix"),
    [
        ("https://phan.example.net", "https://phan.example.net/"),
        ("https://phan.example.net/", "https://phan.example.net/"),
        ("https://phan.example.net/p", "https://phan.example.net/p/"),
        ("https://phan.example.net/p/", "https://phan.example.net/p/"),
        ("https://phan.example.net:8443/a/b//", "https://phan.example.net:8443/a/b/"),
    ],
)
def test_url_for_joins_base_and_token(ring: Keyring, base: str, prefix: str) -> None:
    url = url_for(base, "LOS-1", ring)
    assert url.startswith(prefix)
    token = url[len(prefix):]
    assert token
    assert "/" not in token
    assert decode(url, ring) == "LOS-1"
    assert decode(token, ring) == "LOS-1"


def test_decode_accepts_url_variants(ring: Keyring) -> None:
    url = url_for(BASE, "LOS-7", ring)
    assert decode(url + "/", ring) == "LOS-7"
    assert decode(f"  {url}\n", ring) == "LOS-7"
    assert decode(url + "?utm=x", ring) == "LOS-7"
    assert decode("http://other.example/" + url.rpartition("/")[2], ring) == "LOS-7"


def test_http_only_when_allowed(ring: Keyring) -> None:
    with pytest.raises(PhanError, match="https://"):
        url_for("http://phan.example.net", "LOS-1", ring)
    url = url_for("http://phan.example.net", "LOS-1", ring, allow_http=True)
    assert url.startswith("http://phan.example.net/")


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ("", "empty"),
        ("phan.example.net", "https://"),
        ("ftp://phan.example.net", "https://"),
        ("javascript:alert(1)", "https://"),
        ("https://", "no host"),
        ("https:///path", "no host"),
        ("https://phan.example.net/?a=1", "query or fragment"),
        ("https://phan.example.net/p?", "query or fragment"),
        ("https://phan.example.net/#frag", "query or fragment"),
        ("https://user:pw@phan.example.net/", "credentials"),
        ("https://phan.example.net/a b", "whitespace"),
        ("https://phan.example.net/a\nb", "whitespace"),
        ('https://phan.example.net/"><x', "quoting"),
        ("https://phan.example.net:99999/", "not a valid URL"),
    ],
)
def test_bad_base_urls_refused(ring: Keyring, base: str, message: str) -> None:
    with pytest.raises(PhanError, match=message):
        url_for(base, "LOS-1", ring)


def test_url_without_token_refused(ring: Keyring) -> None:
    with pytest.raises(PhanTokenError, match="no token"):
        decode("https://phan.example.net/", ring)


# -- tampering ----------------------------------------------------------------------------------


def test_flipping_any_bit_of_any_byte_is_refused(ring: Keyring) -> None:
    token = encode("LOS-000123", ring)
    raw = unb64url(token)
    for i in range(len(raw)):
        for bit in range(8):
            forged = bytearray(raw)
            forged[i] ^= 1 << bit
            with pytest.raises(PhanTokenError):
                decode(b64url(bytes(forged)), ring)


def test_changing_any_character_of_the_token_is_refused(ring: Keyring) -> None:
    token = encode("LOS-000123", ring)
    for i, ch in enumerate(token):
        for repl in {"A", "B", "a", "-", "_", "0"} - {ch}:
            forged = token[:i] + repl + token[i + 1:]
            with pytest.raises(PhanTokenError):
                decode(forged, ring)


def test_tampered_message_says_authentication_failed(ring: Keyring) -> None:
    raw = bytearray(unb64url(encode("LOS-1", ring)))
    raw[-1] ^= 0x01
    with pytest.raises(PhanTokenError, match="failed authentication"):
        decode(b64url(bytes(raw)), ring)


def test_swapping_the_key_id_is_refused() -> None:
    ring = Keyring({"k1": K1, "k2": K2}, current="k1")
    raw = bytearray(unb64url(encode("LOS-1", ring)))
    raw[1:3] = b"k2"
    with pytest.raises(PhanTokenError, match="failed authentication"):
        decode(b64url(bytes(raw)), ring)


def test_same_key_under_another_id_is_still_refused() -> None:
    # The key id is associated data: relabelling a token fails even if both ids hold one key.
    ring = Keyring({"k1": K1, "k9": K1}, current="k1")
    raw = bytearray(unb64url(encode("LOS-1", ring)))
    raw[1:3] = b"k9"
    with pytest.raises(PhanTokenError, match="failed authentication"):
        decode(b64url(bytes(raw)), ring)


def test_truncation_is_refused(ring: Keyring) -> None:
    token = encode("LOS-000123", ring)
    raw = unb64url(token)
    for n in range(len(raw)):
        with pytest.raises(PhanTokenError):
            decode(b64url(raw[:n]), ring)
    for n in range(len(token)):
        with pytest.raises(PhanTokenError):
            decode(token[:n], ring)


def test_extension_is_refused(ring: Keyring) -> None:
    token = encode("LOS-000123", ring)
    raw = unb64url(token)
    for extra in (b"\x00", b"A", b"\x00" * 16, bytes(range(40))):
        with pytest.raises(PhanTokenError):
            decode(b64url(raw + extra), ring)
    for suffix in ("A", "AA", "AAA", "AAAA"):
        with pytest.raises(PhanTokenError):
            decode(token + suffix, ring)


@pytest.mark.parametrize("version", [0, 2, 15])
def test_wrong_version_is_refused(ring: Keyring, version: int) -> None:
    raw = bytearray(unb64url(encode("LOS-1", ring)))
    raw[0] = (version << 4) | (raw[0] & 0x0F)
    with pytest.raises(PhanTokenError, match=f"unsupported PHAN token version {version}"):
        decode(b64url(bytes(raw)), ring)


@pytest.mark.parametrize(
    "bad",
    ["", "!!!!", "abc=", "ab+/cd", "a" * 5, "a" * 500, "tok en", "é" * 40, "%41%41"],
)
def test_malformed_tokens_refused(ring: Keyring, bad: str) -> None:
    with pytest.raises(PhanTokenError):
        decode(bad, ring)


def test_malformed_base64_message(ring: Keyring) -> None:
    with pytest.raises(PhanTokenError, match="malformed PHAN token"):
        decode("not*base64*at*all", ring)


def test_non_canonical_base64_refused(ring: Keyring) -> None:
    token = encode("LOS-12", ring)  # 37 bytes: 50 chars, the last one carries 4 spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    sibling = token[:-1] + alphabet[last ^ 0x01]  # same bytes, different spare bits
    assert unb64url(sibling) == unb64url(token)
    with pytest.raises(PhanTokenError, match="canonical"):
        decode(sibling, ring)


def test_forged_token_with_invalid_plaintext_refused() -> None:
    # Someone holding the key could still encrypt junk: the decoded code is validated.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header = bytes([(1 << 4) | 1]) + b"k1"
    nonce = b"\x00" * 12
    body = AESGCM(K1).encrypt(nonce, b"<x/>\n", header)
    with pytest.raises(PhanTokenError, match="invalid line of service code"):
        decode(b64url(header + nonce + body), Keyring({"k1": K1}))


def test_errors_are_value_errors_not_library_exceptions(ring: Keyring) -> None:
    for bad in ("AAAA" * 12, "_" * 60, b64url(b"\x1f" + b"\xff" * 40)):
        with pytest.raises(PhanTokenError) as info:
            decode(bad, ring)
        assert isinstance(info.value, ValueError)
        assert info.value.__cause__ is None


def test_non_string_input_refused(ring: Keyring) -> None:
    with pytest.raises(PhanTokenError, match="must be a string"):
        decode(b"abc", ring)  # type: ignore[arg-type]


# -- rotation -----------------------------------------------------------------------------------


def test_key_rotation() -> None:
    ring1 = Keyring({"k1": K1})
    old_url = url_for(BASE, "LOS-1", ring1)

    ring2 = ring1.with_key("k2", K2)
    assert ring2.current == "k2"
    assert ring1.current == "k1"  # immutable
    assert decode(old_url, ring2) == "LOS-1"
    new_url = url_for(BASE, "LOS-2", ring2)
    assert unb64url(new_url.rpartition("/")[2])[1:3] == b"k2"
    assert decode(new_url, ring2) == "LOS-2"
    with pytest.raises(PhanTokenError, match="key id 'k2' is not in the keyring"):
        decode(new_url, ring1)

    retired = ring2.without("k1")
    assert retired.key_ids == ("k2",)
    assert decode(new_url, retired) == "LOS-2"
    with pytest.raises(
        PhanTokenError, match=r"key id 'k1' is not in the keyring: was the key retired\?"
    ):
        decode(old_url, retired)


def test_rotation_by_changing_current_only() -> None:
    ring = Keyring({"k1": K1, "k2": K2}, current="k1")
    old = encode("LOS-1", ring)
    ring = ring.with_current("k2")
    new = encode("LOS-1", ring)
    assert unb64url(old)[1:3] == b"k1"
    assert unb64url(new)[1:3] == b"k2"
    assert decode(old, ring) == decode(new, ring) == "LOS-1"


def test_current_key_cannot_be_retired() -> None:
    ring = Keyring({"k1": K1, "k2": K2})
    with pytest.raises(PhanKeyError, match="is current"):
        ring.without("k2")
    with pytest.raises(PhanKeyError, match="not in the keyring"):
        ring.without("k3")
    with pytest.raises(PhanKeyError, match="not in the keyring"):
        ring.with_current("k3")


def test_different_key_same_id_refused() -> None:
    token = encode("LOS-1", Keyring({"k1": K1}))
    with pytest.raises(PhanTokenError, match="failed authentication"):
        decode(token, Keyring({"k1": K2}))


# -- keyring construction -----------------------------------------------------------------------


def test_keyring_defaults_current_to_last() -> None:
    ring = Keyring({"a": K1, "b": K2})
    assert ring.current == "b"
    assert ring.key_ids == ("a", "b")
    assert "a" in ring
    assert len(ring) == 2


@pytest.mark.parametrize("kid", ["", "a" * 17, "k 1", "k:1", "k/1", "ké", "k\n"])
def test_bad_key_ids_refused(kid: str) -> None:
    with pytest.raises(PhanKeyError, match="invalid key id"):
        Keyring({kid: K1})
    with pytest.raises(PhanKeyError, match="invalid key id"):
        Keyring.generate(kid)


def test_key_id_length_limits() -> None:
    for kid in ("a", "A" * 16, "key_2026-01"):
        ring = Keyring({kid: K1})
        assert decode(encode("LOS-1", ring), ring) == "LOS-1"


def test_bad_key_lengths_refused() -> None:
    for key in (b"", b"x" * 16, b"x" * 31, b"x" * 33):
        with pytest.raises(PhanKeyError, match="must be 32 bytes"):
            Keyring({"k1": key})
    with pytest.raises(PhanKeyError, match="empty"):
        Keyring({})


def test_from_mapping_accepts_bytes_and_base64() -> None:
    ring = Keyring.from_mapping({"k1": K1_B64, "k2": K2}, current="k1")
    assert ring.current == "k1"
    assert decode(encode("LOS-1", ring), Keyring({"k1": K1})) == "LOS-1"
    with pytest.raises(PhanKeyError, match="must be 32 bytes of base64") as info:
        Keyring.from_mapping({"k1": "c2hvcnQ="})
    assert "c2hvcnQ" not in str(info.value)


def test_generate_makes_random_keys_that_export_and_reload() -> None:
    a = Keyring.generate("k7")
    b = Keyring.generate("k7")
    assert a.current == "k7"
    exported = a.export_secrets()
    assert exported.startswith("k7:")
    assert exported != b.export_secrets()
    reloaded = Keyring.from_env(environ={"PONCTL_PHAN_KEYS": exported})
    assert decode(encode("LOS-1", a), reloaded) == "LOS-1"


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONCTL_PHAN_KEYS", f"k1:{K1_B64}, k2:{K2_B64}")
    monkeypatch.delenv("PONCTL_PHAN_CURRENT", raising=False)
    ring = Keyring.from_env()
    assert ring.key_ids == ("k1", "k2")
    assert ring.current == "k2"
    monkeypatch.setenv("PONCTL_PHAN_CURRENT", "k1")
    assert Keyring.from_env().current == "k1"
    monkeypatch.setenv("PONCTL_PHAN_CURRENT", "k3")
    with pytest.raises(PhanKeyError, match="current key id 'k3'"):
        Keyring.from_env()


def test_from_env_accepts_urlsafe_and_unpadded_keys() -> None:
    urlsafe = base64.urlsafe_b64encode(K2).decode().rstrip("=")
    ring = Keyring.from_env(environ={"PONCTL_PHAN_KEYS": f"k2:{urlsafe},"})
    assert decode(encode("LOS-1", ring), Keyring({"k2": K2})) == "LOS-1"


def test_from_env_custom_variables() -> None:
    env = {"MY_KEYS": f"a:{K1_B64},b:{K2_B64}", "MY_CUR": "a"}
    ring = Keyring.from_env("MY_KEYS", current_var="MY_CUR", environ=env)
    assert ring.current == "a"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "PONCTL_PHAN_KEYS is not set or empty"),
        ("  ", "PONCTL_PHAN_KEYS is not set or empty"),
        (", ,", "PONCTL_PHAN_KEYS holds no keys"),
        (f"k1:{K1_B64},k2:c2hvcnQ=", "PONCTL_PHAN_KEYS entry 2: key must be 32 bytes of base64"),
        (f"k1:{K1_B64},k2:not base64!", "PONCTL_PHAN_KEYS entry 2: key must be 32 bytes"),
        (f"k1:{K1_B64},k2:", "PONCTL_PHAN_KEYS entry 2: key must be 32 bytes of base64"),
        (f"k1:{K1_B64}{K1_B64}", "PONCTL_PHAN_KEYS entry 1: key must be 32 bytes of base64"),
        (f"k1:{K1_B64},{K2_B64}", "PONCTL_PHAN_KEYS entry 2: expected KID:BASE64KEY"),
        (f"{K1_B64}:k1", "PONCTL_PHAN_KEYS entry 1: invalid key id"),
        (f"k 1:{K1_B64}", "PONCTL_PHAN_KEYS entry 1: invalid key id"),
        (f"k1:{K1_B64},k1:{K2_B64}", "PONCTL_PHAN_KEYS entry 2: duplicate key id 'k1'"),
    ],
)
def test_from_env_errors_name_the_entry(value: str, message: str) -> None:
    with pytest.raises(PhanKeyError, match=message) as info:
        Keyring.from_env(environ={"PONCTL_PHAN_KEYS": value})
    text = str(info.value) + repr(info.value)
    for secret in (K1_B64, K2_B64, K1_B64.rstrip("="), K2_B64.rstrip("=")):
        assert secret not in text
    assert "c2hvcnQ" not in text


def test_from_env_missing_variable() -> None:
    with pytest.raises(PhanKeyError, match="PONCTL_PHAN_KEYS is not set"):
        Keyring.from_env(environ={})


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "phan.keys"
    path.write_text(f"# PHAN keys\n\nk1:{K1_B64}\n  k2:{K2_B64}  \n", encoding="utf-8")
    ring = Keyring.from_file(path)
    assert ring.key_ids == ("k1", "k2")
    assert ring.current == "k2"
    assert Keyring.from_file(str(path), current="k1").current == "k1"


def test_from_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "phan.keys"
    path.write_text(f"k1:{K1_B64}\n# comment\nk2:{K2_B64[:-4]}\n", encoding="utf-8")
    with pytest.raises(PhanKeyError, match="line 3: key must be 32 bytes of base64") as info:
        Keyring.from_file(path)
    assert K1_B64 not in str(info.value)
    assert K2_B64[:-4] not in str(info.value)

    path.write_text("# nothing here\n\n", encoding="utf-8")
    with pytest.raises(PhanKeyError, match="holds no keys"):
        Keyring.from_file(path)

    with pytest.raises(PhanKeyError, match="cannot read PHAN key file"):
        Keyring.from_file(tmp_path / "missing.keys")

    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PhanKeyError, match="not UTF-8"):
        Keyring.from_file(path)

    path.write_text(f"k1:{K1_B64}\n", encoding="utf-8")
    with pytest.raises(PhanKeyError, match="current key id 'k9'"):
        Keyring.from_file(path, current="k9")


# -- secrets stay secret ------------------------------------------------------------------------


def test_secrets_absent_from_repr_and_str() -> None:
    ring = Keyring.from_env(environ={"PONCTL_PHAN_KEYS": f"k1:{K1_B64},k2:{K2_B64}"})
    for text in (repr(ring), str(ring), f"{ring}", f"{ring!r}"):
        assert "k1" in text
        assert "k2" in text
        for secret in (K1_B64, K2_B64, K1_B64[:16], K2_B64[:16], K1.hex(), K2.hex(), str(K1)):
            assert secret not in text


def test_secrets_absent_from_decode_errors() -> None:
    ring = Keyring({"k1": K1, "k2": K2})
    token = encode("LOS-1", ring)
    raw = unb64url(token)
    cases = [b64url(raw[:-1]), b64url(raw[:10]), b64url(b"\x21" + b"zz" + raw[3:]), "!!",
             b64url(bytes([raw[0] ^ 0x10]) + raw[1:])]
    for bad in cases:
        with pytest.raises(PhanTokenError) as info:
            decode(bad, ring)
        text = str(info.value) + repr(info.value) + repr(info.value.args)
        for secret in (K1_B64, K2_B64, K1.hex(), K2.hex(), str(K1), str(K2)):
            assert secret not in text
