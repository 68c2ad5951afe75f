"""The SSH CLI driver against a real OpenSSH ``sshd``: exec, an interactive shell, host keys.

A private sshd runs on a free loopback port with its own host key, configuration and
authorized_keys (key authentication only), as the user running the tests. It shares no code
with asyncssh, so this is the driver on the wire against the SSH server most hosts run.
"""

from __future__ import annotations

import contextlib
import getpass
import platform as host_platform
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from drivers.cli import CliDriver, Platform, load_platform
from drivers.errors import AuthenticationError, CliRejectedError, HostKeyError
from drivers.ssh_transport import SshTarget

SSHD = Path("/usr/sbin/sshd")
START_TIMEOUT = 10.0


@dataclass
class Sshd:
    port: int
    user: str
    client_key: asyncssh.SSHKey
    host_public: str  # "ssh-ed25519 AAAA..." of the server's host key
    tmp: Path

    def known_hosts(self, public: str | None = None) -> Path:
        path = self.tmp / f"known_hosts-{abs(hash(public))}"
        path.write_text(f"[127.0.0.1]:{self.port} {public or self.host_public}\n")
        return path

    def target(self, *, key: asyncssh.SSHKey | None = None,
               known_hosts: Path | None = None) -> SshTarget:
        return SshTarget("127.0.0.1", self.port, self.user,
                         client_keys=(key or self.client_key,),
                         known_hosts=known_hosts or self.known_hosts(), timeout=10.0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _privsep_dir() -> str | None:
    """sshd insists on its privilege separation directory; None if it is there or made."""
    path = Path("/run/sshd")
    if path.is_dir():
        return None
    try:
        path.mkdir(mode=0o755, parents=True)
    except OSError as exc:
        return f"sshd needs {path}, which is missing and cannot be created ({exc.strerror})"
    return None


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not SSHD.is_file() or shutil.which("ssh-keygen") is None:
        pytest.skip("needs OpenSSH's sshd and ssh-keygen (apt-get install -y openssh-server)")
    reason = _privsep_dir()
    if reason is not None:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("sshd")
    host = tmp / "host"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-f", str(host), "-N", ""],
                   check=True, capture_output=True, timeout=30)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    (tmp / "authorized_keys").write_bytes(client_key.export_public_key())
    port = _free_port()
    conf = tmp / "sshd_config"
    conf.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host}",
        f"PidFile {tmp / 'pid'}", f"AuthorizedKeysFile {tmp / 'authorized_keys'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "UsePAM no", "StrictModes no", "PermitRootLogin yes",
        "PrintMotd no", "PrintLastLog no", "MaxStartups 64", "LogLevel INFO", ""]))
    log = (tmp / "sshd.log").open("wb")
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(conf)], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.skip(f"sshd did not start (exit {proc.returncode}): "
                            f"{(tmp / 'sshd.log').read_text(errors='replace')[-500:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                        timeout=1):
                break
            if time.monotonic() > deadline:
                pytest.skip(f"sshd did not listen on port {port} within {START_TIMEOUT} s")
            time.sleep(0.02)
        public = " ".join((tmp / "host.pub").read_text().split()[:2])
        yield Sshd(port, getpass.getuser(), client_key, public, tmp)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def shell() -> Platform:
    return load_platform("linux-shell")


async def test_exec(sshd: Sshd, shell: Platform) -> None:
    async with CliDriver(sshd.target(), shell) as cli:
        out = await cli.exec("echo hello; uname -s")
        assert out == f"hello\n{host_platform.system()}\n"
        with pytest.raises(CliRejectedError) as info:
            await cli.exec("echo partial; exit 3")
        assert info.value.output == "partial\n"
        assert await cli.exec("exit 3", check=False) == ""


async def test_interactive_shell(sshd: Sshd, shell: Platform) -> None:
    async with CliDriver(sshd.target(), shell) as cli:
        assert cli.prompt == "ponctl$"
        assert await cli.send_command("echo hello") == "hello"
        assert await cli.send_command("cd / && pwd") == "/"
        assert await cli.send_command("true") == ""
        # A long reply arrives in many SSH packets; every line is there, in order.
        lines = (await cli.send_command("seq 1 3000")).split("\n")
        assert lines == [str(n) for n in range(1, 3001)]
        with pytest.raises(CliRejectedError) as info:
            await cli.send_command("no-such-command-ponctl", check=True)
        assert "not found" in info.value.output
        assert cli.connected


async def test_batch_stops_at_the_first_failing_line(sshd: Sshd, shell: Platform,
                                                     tmp_path: Path) -> None:
    first, third = tmp_path / "first", tmp_path / "third"
    async with CliDriver(sshd.target(), shell) as cli:
        await cli.load_candidate([f"touch {first}", "no-such-command-ponctl",
                                  f"touch {third}"])
        assert len((await cli.compare()).lines) == 3  # no show-running: every line
        with pytest.raises(CliRejectedError) as info:
            await cli.commit()
        assert info.value.line_no == 2
        assert first.exists()
        assert not third.exists()


async def test_host_key_checked_against_known_hosts(sshd: Sshd, shell: Platform) -> None:
    # The matching known_hosts file is what every other test here uses; a different key for
    # the same host and port is refused before any authentication.
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    cli = CliDriver(sshd.target(known_hosts=sshd.known_hosts(other)), shell)
    with pytest.raises(HostKeyError):
        await cli.connect()
    assert not cli.connected


async def test_wrong_client_key(sshd: Sshd, shell: Platform) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(AuthenticationError):
        await CliDriver(sshd.target(key=stranger), shell).connect()
