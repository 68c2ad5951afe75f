"""SSH CLI driver: an interactive shell (and exec channel) per device, dialects as data.

- :mod:`drivers.cli.platform` — the :class:`Platform` model read from ``configs/platforms/``.
- :mod:`drivers.cli.text` and :mod:`drivers.cli.diff` — pure text handling and the
  line-based compare.
- :mod:`drivers.cli.channel` — the session I/O: prompts, echo, paging, timeouts.
- :mod:`drivers.cli.driver` — :class:`CliDriver`, the driver contract.
"""

from drivers.cli.channel import CliChannel
from drivers.cli.driver import CliDriver
from drivers.cli.platform import Platform, PlatformError, load_platform

__all__ = ["CliChannel", "CliDriver", "Platform", "PlatformError", "load_platform"]
