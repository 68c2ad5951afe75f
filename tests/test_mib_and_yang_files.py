"""The MIB and YANG files under configs/ must load cleanly in the standard tools.

Tools (Debian packages): smilint (smitools), snmptranslate (snmp), yanglint (libyang2-tools).
Each test skips, saying why, when its tool is missing.

The MIB tests also need the IETF base modules SNMPv2-SMI, SNMPv2-TC and SNMPv2-CONF, which
Debian's main archive does not ship (they are in non-free's snmp-mibs-downloader). They are
searched for in configs/mibs, in the directories listed in MIBDIRS (net-snmp's variable, also
applied to smilint here), and in each tool's default path; when the tool reports them missing,
the test skips with that reason instead of failing on a module that is not ours.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MIB_DIR = REPO / "configs" / "mibs"
MIB_FILE = MIB_DIR / "PONCTL-MIB.txt"
YANG_DIR = REPO / "configs" / "yang"
YANG_MODULE = YANG_DIR / "ponctl-gateway@2026-11-21.yang"
YANG_EXAMPLE = YANG_DIR / "examples" / "gateway.xml"
SHARED_YANG = REPO.parent / "shared" / "yang" / "modules"

TIMEOUT_S = 60
# smilint's highest level: everything it can report, down to name-length hints.
SMILINT_LEVEL = "9"

# The OIDs other code is written against; changing one breaks the agent and the simulator.
EXPECTED_OIDS = {
    "ponctl": ".1.3.6.1.4.1.32473.1",
    "ponctlNotifications": ".1.3.6.1.4.1.32473.1.0",
    "ponctlObjects": ".1.3.6.1.4.1.32473.1.1",
    "ponctlConformance": ".1.3.6.1.4.1.32473.1.2",
    "ponctlPonPortTable": ".1.3.6.1.4.1.32473.1.1.1",
    "ponctlPonPortName": ".1.3.6.1.4.1.32473.1.1.1.1.2",
    "ponctlPonPortOperStatus": ".1.3.6.1.4.1.32473.1.1.1.1.3",
    "ponctlPonPortOntCount": ".1.3.6.1.4.1.32473.1.1.1.1.4",
    "ponctlOntTable": ".1.3.6.1.4.1.32473.1.1.2",
    "ponctlOntSerial": ".1.3.6.1.4.1.32473.1.1.2.1.2",
    "ponctlOntDescription": ".1.3.6.1.4.1.32473.1.1.2.1.3",
    "ponctlOntAdminStatus": ".1.3.6.1.4.1.32473.1.1.2.1.4",
    "ponctlOntOperStatus": ".1.3.6.1.4.1.32473.1.1.2.1.5",
    "ponctlOntRxPower": ".1.3.6.1.4.1.32473.1.1.2.1.6",
    "ponctlOntTxPower": ".1.3.6.1.4.1.32473.1.1.2.1.7",
    "ponctlOntModel": ".1.3.6.1.4.1.32473.1.1.2.1.8",
    "ponctlOntFirmware": ".1.3.6.1.4.1.32473.1.1.2.1.9",
    "ponctlOntRowStatus": ".1.3.6.1.4.1.32473.1.1.2.1.10",
    "ponctlServiceTable": ".1.3.6.1.4.1.32473.1.1.3",
    "ponctlServiceUni": ".1.3.6.1.4.1.32473.1.1.3.1.2",
    "ponctlServiceCVlan": ".1.3.6.1.4.1.32473.1.1.3.1.3",
    "ponctlServiceSVlan": ".1.3.6.1.4.1.32473.1.1.3.1.4",
    "ponctlServiceProfile": ".1.3.6.1.4.1.32473.1.1.3.1.5",
    "ponctlServiceGemPort": ".1.3.6.1.4.1.32473.1.1.3.1.6",
    "ponctlServiceApplied": ".1.3.6.1.4.1.32473.1.1.3.1.7",
    "ponctlServiceRowStatus": ".1.3.6.1.4.1.32473.1.1.3.1.8",
    "ponctlAutofindTable": ".1.3.6.1.4.1.32473.1.1.4",
    "ponctlAutofindSerial": ".1.3.6.1.4.1.32473.1.1.4.1.2",
    "ponctlAutofindModel": ".1.3.6.1.4.1.32473.1.1.4.1.3",
    "ponctlAutofindFirmware": ".1.3.6.1.4.1.32473.1.1.4.1.4",
    "ponctlUplinkTable": ".1.3.6.1.4.1.32473.1.1.5",
    "ponctlUplinkName": ".1.3.6.1.4.1.32473.1.1.5.1.2",
    "ponctlUplinkVlanTable": ".1.3.6.1.4.1.32473.1.1.6",
    "ponctlUplinkVlanStatus": ".1.3.6.1.4.1.32473.1.1.6.1.2",
    "ponctlGateway": ".1.3.6.1.4.1.32473.1.1.7",
    "ponctlGatewaySerial": ".1.3.6.1.4.1.32473.1.1.7.1",
    "ponctlGatewayMac": ".1.3.6.1.4.1.32473.1.1.7.2",
    "ponctlGatewayPhanUrl": ".1.3.6.1.4.1.32473.1.1.7.3",
    "ponctlGatewayWanVlan": ".1.3.6.1.4.1.32473.1.1.7.4",
    "ponctlOntDiscovered": ".1.3.6.1.4.1.32473.1.0.1",
    "ponctlOntUp": ".1.3.6.1.4.1.32473.1.0.2",
    "ponctlOntDown": ".1.3.6.1.4.1.32473.1.0.3",
}

# The header comment's table: "--   ponctlOntTable   1.3.6.1.4.1.32473.1.1.2".
HEADER_OID_LINE = re.compile(r"^--\s+(ponctl\w*)\s+(1\.3\.6\.1\.4\.1\.32473(?:\.\d+)*)\b")


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (apt-get install {package})")
    return path


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, check=False, capture_output=True, text=True, timeout=TIMEOUT_S, env=env
    )


def _split(path: str | None) -> list[str]:
    return [d for d in (path or "").split(":") if d]


def _extra_mib_dirs() -> list[str]:
    # MIBDIRS may start with "+" (net-snmp's "add to the defaults"); the defaults are kept anyway.
    return _split(os.environ.get("MIBDIRS", "").lstrip("+"))


def _snmptranslate(args: list[str], conf_dir: Path) -> subprocess.CompletedProcess[str]:
    tool = _require("snmptranslate", "snmp")
    mib_path = ":".join(["+", str(MIB_DIR), *_extra_mib_dirs()])
    # An empty SNMPCONFPATH keeps the user's snmp.conf (e.g. "mibs +ALL") out of the result.
    env = {**os.environ, "SNMPCONFPATH": str(conf_dir)}
    env.pop("MIBS", None)
    result = _run([tool, "-M", mib_path, "-m", "PONCTL-MIB", *args], env=env)
    if "Cannot find module (SNMPv2-" in result.stderr:
        pytest.skip(
            "net-snmp cannot find the IETF base MIBs (SNMPv2-SMI/-TC/-CONF): put them in "
            "configs/mibs or in a directory named by MIBDIRS"
        )
    return result


def _yanglint(args: list[str]) -> subprocess.CompletedProcess[str]:
    tool = _require("yanglint", "libyang2-tools")
    if not SHARED_YANG.is_dir():
        pytest.skip(f"{SHARED_YANG} is absent (it holds ietf-yang-types.yang)")
    return _run([tool, "-i", "-p", str(YANG_DIR), "-p", str(SHARED_YANG), *args])


def test_smilint_reports_nothing_at_any_level() -> None:
    tool = _require("smilint", "smitools")
    # A trailing ":" keeps libsmi's configured path (smi.conf) after ours.
    smipath = ":".join([str(MIB_DIR), *_extra_mib_dirs(), *_split(os.environ.get("SMIPATH"))])
    env = {**os.environ, "SMIPATH": smipath + ":"}
    result = _run([tool, "-l", SMILINT_LEVEL, "-s", "-m", str(MIB_FILE)], env=env)
    output = result.stdout + result.stderr
    if "failed to locate MIB module `SNMPv2-" in output:
        pytest.skip(
            "smilint cannot find the IETF base MIBs (SNMPv2-SMI/-TC/-CONF): put them in "
            "configs/mibs or in a directory named by MIBDIRS or SMIPATH"
        )
    assert output == ""
    assert result.returncode == 0


def test_snmptranslate_resolves_names_to_the_agreed_oids(tmp_path: Path) -> None:
    names = list(EXPECTED_OIDS)
    result = _snmptranslate(["-On", *[f"PONCTL-MIB::{name}" for name in names]], tmp_path)

    assert result.stderr == ""
    assert result.returncode == 0
    assert dict(zip(names, result.stdout.split(), strict=True)) == EXPECTED_OIDS


def test_snmptranslate_names_an_instance_oid(tmp_path: Path) -> None:
    # The serial of onu-id 5 on PON port 1: column OID plus the two index values.
    result = _snmptranslate([".1.3.6.1.4.1.32473.1.1.2.1.2.1.5"], tmp_path)

    assert result.stderr == ""
    assert result.stdout.strip() == "PONCTL-MIB::ponctlOntSerial.1.5"


def test_mib_header_comment_lists_the_real_oids(tmp_path: Path) -> None:
    listed = {
        m.group(1): "." + m.group(2)
        for line in MIB_FILE.read_text(encoding="ascii").splitlines()
        if (m := HEADER_OID_LINE.match(line))
    }
    assert {"ponctl", "ponctlOntTable", "ponctlGatewayWanVlan"} <= listed.keys()

    names = list(listed)
    result = _snmptranslate(["-On", *[f"PONCTL-MIB::{name}" for name in names]], tmp_path)

    assert result.stderr == ""
    assert dict(zip(names, result.stdout.split(), strict=True)) == listed


def test_yang_module_compiles_cleanly() -> None:
    result = _yanglint([str(YANG_MODULE)])

    assert result.stdout + result.stderr == ""
    assert result.returncode == 0


def test_yang_example_is_valid_config() -> None:
    result = _yanglint(["-t", "config", str(YANG_MODULE), str(YANG_EXAMPLE)])

    assert result.stdout + result.stderr == ""
    assert result.returncode == 0


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("<wan-vlan>5000</wan-vlan>", "out of the allowed range"),
        ("<wan-vlan>4095</wan-vlan>", "out of the allowed range"),
        ("<phan-url>ftp://phan.example.net/x</phan-url>", "must be an http:// or https:// URL"),
        ("<phan-url>https://</phan-url>", "must be an http:// or https:// URL"),
        ("<phan-url>https://a b.example</phan-url>", "must be an http:// or https:// URL"),
    ],
)
def test_yang_rejects_invalid_config(tmp_path: Path, body: str, complaint: str) -> None:
    instance = tmp_path / "gateway.xml"
    instance.write_text(f'<gateway xmlns="urn:ponctl:yang:ponctl-gateway">{body}</gateway>\n')

    result = _yanglint(["-t", "config", str(YANG_MODULE), str(instance)])

    assert result.returncode != 0
    assert complaint in result.stderr


@pytest.mark.parametrize(
    "body",
    ["<phan-url></phan-url>", "<wan-vlan>0</wan-vlan>", "<wan-vlan>4094</wan-vlan>"],
)
def test_yang_accepts_edge_values(tmp_path: Path, body: str) -> None:
    instance = tmp_path / "gateway.xml"
    instance.write_text(f'<gateway xmlns="urn:ponctl:yang:ponctl-gateway">{body}</gateway>\n')

    result = _yanglint(["-t", "config", str(YANG_MODULE), str(instance)])

    assert result.stdout + result.stderr == ""
    assert result.returncode == 0
