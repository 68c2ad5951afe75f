"""``ponctl phan``: keygen, encode and decode through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def ponctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=REPO, text=True,
                          capture_output=True, check=False, timeout=60,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_keygen_encode_decode_and_tamper(tmp_path: Path) -> None:
    keys = tmp_path / "phan.keys"
    made = ponctl("phan", "keygen", "k1")
    assert made.returncode == 0, made.stderr
    keys.write_text(made.stdout)
    keys.chmod(0o600)
    url = ponctl("phan", "encode", "LINE-0042", "--base-url", "https://phan.example.net/a",
                 "--keys-file", str(keys))
    assert url.returncode == 0, url.stderr
    assert url.stdout.startswith("https://phan.example.net/a/")
    secret = made.stdout.split(":", 1)[1].strip()
    assert secret not in url.stdout
    back = ponctl("phan", "decode", url.stdout.strip(), "--keys-file", str(keys))
    assert (back.returncode, back.stdout.strip()) == (0, "LINE-0042")
    token = url.stdout.strip().rsplit("/", 1)[1]
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    bad = ponctl("phan", "decode", forged, "--keys-file", str(keys))
    assert bad.returncode == 1
    assert "error:" in bad.stderr
    assert secret not in bad.stderr


def test_keys_from_the_environment_and_clear_errors(tmp_path: Path) -> None:
    made = ponctl("phan", "keygen", "k2").stdout.strip()
    env = {"PONCTL_PHAN_KEYS": made}
    url = ponctl("phan", "encode", "L1", "--base-url", "https://x.example/p", env=env)
    assert url.returncode == 0, url.stderr
    assert ponctl("phan", "decode", url.stdout.strip(), env=env).stdout.strip() == "L1"
    http = ponctl("phan", "encode", "L1", "--base-url", "http://x.example/p", env=env)
    assert http.returncode == 1
    assert "https" in http.stderr
    missing = ponctl("phan", "decode", "abc", "--keys-file", str(tmp_path / "none"))
    assert missing.returncode == 1
    assert "cannot read" in missing.stderr
