"""The simulator's SSH CLI face: a Huawei-style OLT command line and an OpenWrt gateway shell.

Layers, outermost first: :mod:`.server` (asyncssh, sessions, faults), :mod:`.terminal` (line
editing and paging), and the pure interpreters :mod:`.huawei` (OLT) and :mod:`.uci` (gateway)
over :mod:`.grammar`, :mod:`.oltconfig` and :mod:`.huawei_display`.
"""

from simulator.cli.server import CliServer

__all__ = ["CliServer"]
