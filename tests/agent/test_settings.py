"""Agent settings: the shipped file loads, secrets are references, errors name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.settings import SecretRef, SettingsError, load_settings, parse_settings
from tests.conftest import REPO

DEVICE: dict[str, Any] = {"name": "olt1", "address": "127.1.0.1", "protocol": "netconf",
                          "port": 8830, "profile": "sim-olt-netconf",
                          "ssh": {"username": "admin", "password": {"env": "OLT_PW"}}}


def test_shipped_settings_load() -> None:
    s = load_settings(REPO / "configs" / "agent.yaml")
    assert [d.name for d in s.devices] == ["olt1", "olt2"]
    assert s.device("olt2").protocol == "snmp"
    assert {t.role for t in s.api.tokens} == {"admin", "csr"}


def test_secrets_resolve_from_env_and_file(tmp_path: Path) -> None:
    assert SecretRef(env="OLT_PW").resolve({"OLT_PW": "s3cret"}) == "s3cret"
    f = tmp_path / "pw"
    f.write_text("from-file\nignored\n")
    assert SecretRef(file=f).resolve() == "from-file"
    with pytest.raises(SettingsError, match="OLT_PW is not set"):
        SecretRef(env="OLT_PW").resolve({})
    with pytest.raises(SettingsError, match="cannot read a secret"):
        SecretRef(file=tmp_path / "missing").resolve()
    assert "s3cret" not in repr(SecretRef(env="OLT_PW"))


@pytest.mark.parametrize(("change", "expected"), [
    ({"password": "hunter2"}, "devices[0].ssh.password: Value error, secrets are not written"),
    ({"password": {"env": "X", "file": "/y"}}, "give exactly one of 'env' or 'file'"),
    ({"password": None}, "give a password reference or a key_file"),
])
def test_literal_and_incomplete_secrets_are_refused(change: dict[str, Any],
                                                    expected: str) -> None:
    device = {**DEVICE, "ssh": {**DEVICE["ssh"], **change}}
    with pytest.raises(SettingsError) as err:
        parse_settings({"devices": [device]}, "agent.yaml")
    assert expected in str(err.value)
    assert "hunter2" not in str(err.value)  # the error never echoes what was written


@pytest.mark.parametrize(("change", "expected"), [
    ({"protocol": "telnet"}, "devices[0].protocol"),
    ({"port": 0}, "devices[0].port"),
    ({"name": "olt 1"}, "devices[0].name"),
    ({"address": "not an address!"}, "neither an IP address nor a host name"),
    ({"protocol": "snmp"}, "an snmp device needs 'snmp' credentials"),
])
def test_bad_devices_name_the_field(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings({"devices": [{**DEVICE, **change}]}, "agent.yaml")
    assert str(err.value).startswith("agent.yaml: ")
    assert expected in str(err.value)


def test_duplicate_devices_and_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="device names repeat: olt1"):
        parse_settings({"devices": [DEVICE, DEVICE]}, "agent.yaml")
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(bad)
