"""The OLT's CLI through netmiko's stock ``huawei_olt`` driver (HuaweiSmartAXSSH): the session
preparation it sends (``undo smart``, ``infoswitch cli OFF``, ``disable``, ``enable``, paging),
its prompts and config mode, and ``send_config_set`` provisioning an ONT and its service.

netmiko shares no code with the simulator (it is paramiko and regular expressions over the
terminal), so this is what a user's existing scripts see. It blocks, so it runs in a thread while
the server runs on the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import pytest

from simulator.cli import CliServer
from simulator.devices import Olt, OntState
from tests.sim.cli_helpers import PASSWORD, SERIAL, USER, make_olt, wait_for

netmiko = pytest.importorskip("netmiko", reason="netmiko is not installed (pip install netmiko)")

LINES = ["interface gpon 0/1",
         "ont add 0 1 sn-auth SLNK0000AB01 omci ont-lineprofile-id 10 ont-srvprofile-id 10",
         "ont port native-vlan 0 1 eth 1 vlan 10",
         "quit",
         "service-port 5 vlan 100 gpon 0/1/0 ont 1 gemport 1001 multi-service user-vlan 10 "
         "tag-transform translate-and-add inner-vlan 10"]


@pytest.fixture
async def served() -> AsyncIterator[tuple[Olt, CliServer]]:
    olt = make_olt()
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = await CliServer.start(olt, "127.0.0.1", 0, key)
    try:
        yield olt, server
    finally:
        await server.close()


def _push(port: int) -> dict[str, Any]:
    conn = netmiko.ConnectHandler(device_type="huawei_olt", host="127.0.0.1", port=port,
                                  username=USER, password=PASSWORD, fast_cli=True,
                                  conn_timeout=10, banner_timeout=10, auth_timeout=10)
    try:
        conn.enable()  # config mode is entered from privileged view, as on an MA5800
        prompt = conn.find_prompt()
        output = conn.send_config_set(LINES)
        table = conn.send_command("display service-port all")
    finally:
        conn.disconnect()
    return {"prompt": prompt, "output": output, "table": table}


@pytest.mark.timeout(90)
async def test_stock_netmiko_huawei_olt_provisions_an_ont(served: tuple[Olt, CliServer]) -> None:
    olt, server = served
    ont = olt.add_ont(SERIAL, "0/1/0")
    result = await asyncio.to_thread(_push, server.port)
    assert result["prompt"] == "OLT1#"
    assert "Failure" not in result["output"]
    assert "Number of ONTs that can be added: 1, success: 1" in result["output"]
    assert " 5 " in result["table"]
    assert "100" in result["table"]
    await wait_for(lambda: ont.state == OntState.OPERATIONAL and bool(ont.applied))
    (svc,) = ont.applied.values()
    assert (svc.c_vlan, svc.s_vlan, svc.uni) == (10, 100, 1)
