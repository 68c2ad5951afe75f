"""CLI dialects as data: one YAML file per platform under ``configs/platforms/``.

A platform says how to talk to one kind of CLI: what its prompts look like in each mode, how
to move between modes, how to turn paging off (and how to answer the pager when that fails),
which output lines mean a command was refused, and how to save or commit. A new dialect is a
new file; :func:`load_platform` reads it into a :class:`Platform` and refuses a bad one with a
message naming the file, the field and the reason.

Every regular expression in a platform file is matched with ``re.search`` against **one line**
of device output, after ANSI escape sequences are removed, carriage returns and backspaces
are applied as a terminal would, and trailing blanks are stripped. Anchor with ``^``/``$``
where it matters (a prompt pattern always should).

Bare platform names are looked up in ``$PONCTL_CONFIGS/platforms/`` when that variable is set,
else in the ``configs/platforms/`` directory found by walking up from this module (the source
checkout), else in ``./configs/platforms/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from drivers.datafiles import data_dirs, locate, read_yaml, validation_message

Mode = Literal["user", "privileged", "config", "sub_config"]
Target = Literal["user", "privileged", "config"]  # the modes a session is moved to
MODES: tuple[Mode, ...] = ("user", "privileged", "config", "sub_config")


class PlatformError(ValueError):
    """A platform file that cannot be used; the message names the file, field and reason."""


def _compile(value: object) -> object:
    # pydantic's own regex check says only "valid regular expression"; say why not.
    if isinstance(value, str):
        try:
            return re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


Regex = Annotated[re.Pattern[str], BeforeValidator(_compile)]
Command = Annotated[str, Field(min_length=1, max_length=1024)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prompts(_Model):
    """Prompt patterns: ``any`` ends every reply; the per-mode ones tell the modes apart."""

    any: Regex  # matches the prompt of every mode: a reply is complete when it shows up
    user: Regex | None = None
    privileged: Regex | None = None
    config: Regex | None = None
    sub_config: Regex | None = None  # inside a section of config mode (interface, ...)

    def of(self, mode: Mode) -> re.Pattern[str] | None:
        """The pattern of one mode."""
        return {"user": self.user, "privileged": self.privileged, "config": self.config,
                "sub_config": self.sub_config}[mode]


class Modes(_Model):
    """Commands that move between modes (absent: the platform has no such mode)."""

    enable: Command | None = None  # user -> privileged
    disable: Command | None = None  # privileged -> user
    config: Command | None = None  # privileged -> config
    end: Command | None = None  # config or sub-config -> privileged, in one step


class Paging(_Model):
    """How long output is paged, and how the driver avoids or answers it."""

    disable: list[Command] = []  # run once after login; failures are tolerated
    prompt: Regex | None = None  # the pager's "more" prompt, answered when seen
    key: str = Field(default=" ", min_length=1, max_length=8)  # sent without a line ending


class Confirm(_Model):
    """A question a command may ask before it completes, and the answer to send."""

    prompt: Regex
    answer: str = Field(max_length=64)  # sent followed by the line ending


class Save(_Model):
    """How to make the running configuration survive a reboot."""

    command: Command
    mode: Target | None = None  # the mode to run it in (None: wherever the session is)
    confirm: list[Confirm] = []


class Sections(_Model):
    """Lines that enter and leave a section (a sub-mode): they navigate, they configure
    nothing themselves, so ``compare`` shows them only as the context of a change."""

    enter: list[Regex] = []
    exit: list[Regex] = []


class Rewrite(_Model):
    """Turns a candidate line into the form the show-running command prints (``re.sub``)."""

    pattern: Regex
    replace: str


_GROUP_REF = re.compile(r"\\(\d+)|\\g<(\w+)>")


class Removal(_Model):
    """A removal line (``undo ...``, ``ont delete ...``) and what shows the thing it removes.

    Removals never appear in the running configuration, so a line-based compare would always
    send them, and a device refuses to remove what is already gone. A candidate line matching
    ``pattern`` is sent only while a running line under the same sections matches
    ``present``: a regular expression in which ``\\1`` or ``\\g<name>`` stand for the
    pattern's groups (inserted literally, escaped). With no such line the removal is already
    done and nothing is sent.
    """

    pattern: Regex
    present: str = Field(min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _template(self) -> Removal:
        groups = self.pattern.groups
        names = set(self.pattern.groupindex)
        for m in _GROUP_REF.finditer(self.present):
            if m.group(1) is not None and not 1 <= int(m.group(1)) <= groups:
                raise ValueError(f"present refers to group {m.group(1)}, but the pattern has "
                                 f"{groups}")
            if m.group(2) is not None and m.group(2) not in names:
                raise ValueError(f"present refers to group {m.group(2)!r}, which the pattern "
                                 f"does not name")
        try:
            re.compile(_GROUP_REF.sub("x", self.present))
        except re.error as exc:
            raise ValueError(f"present is not a valid regular expression: {exc}") from None
        return self

    def present_in(self, line: str) -> re.Pattern[str] | None:
        """For a candidate line this rule covers, the pattern of the running line that shows
        what it removes; None when the rule does not apply to the line."""
        m = self.pattern.search(line)
        if m is None:
            return None

        def group(ref: re.Match[str]) -> str:
            key: int | str = int(ref.group(1)) if ref.group(1) is not None else ref.group(2)
            return re.escape(m.group(key) or "")

        return re.compile(_GROUP_REF.sub(group, self.present))


class TerminalSettings(_Model):
    """The PTY requested for the interactive session."""

    type: str = Field(default="vt100", min_length=1, max_length=32)
    width: int = Field(default=511, ge=40, le=4096)  # wide: devices must not wrap lines
    height: int = Field(default=24, ge=0, le=4096)


class Platform(_Model):
    """One CLI dialect. See ``configs/platforms/*.yaml`` for documented examples."""

    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    shell_command: Command | None = None  # run this (with a PTY) instead of the login shell
    terminal: TerminalSettings = TerminalSettings()
    line_ending: Literal["\n", "\r", "\r\n"] = "\n"
    timeout: float = Field(default=30.0, gt=0, le=3600)  # seconds per command
    prompts: Prompts
    modes: Modes = Modes()
    paging: Paging = Paging()
    errors: list[Regex] = []  # a line of a reply matching any of these: the command failed
    questions: list[Confirm] = []  # asked by any command (Huawei's "{ <cr>|... }:")
    save: Save | None = None
    show_running: Command | None = None  # prints the running configuration as CLI lines
    commit: Command | None = None  # makes staged changes take effect (uci: "uci commit")
    abort: Command | None = None  # drops staged changes after a refused line
    sections: Sections = Sections()
    compare_rewrites: list[Rewrite] = []
    removals: list[Removal] = []  # removal lines sent only while what they remove is there
    poll_command: Command | None = None  # what events() polls when not told otherwise
    volatile: list[Regex] = []  # lines that change by themselves (times): ignored by events()
    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """The file this platform was loaded from ('' when built in code)."""
        return self._source

    def mode_of(self, prompt: str) -> Mode | None:
        """The mode a prompt line belongs to (None: no per-mode pattern matches it)."""
        # The most specific mode first: a loose user pattern may also match a config prompt.
        for mode in reversed(MODES):
            pattern = self.prompts.of(mode)
            if pattern is not None and pattern.search(prompt):
                return mode
        return None

    @model_validator(mode="after")
    def _consistent(self) -> Platform:
        p, m = self.prompts, self.modes
        needs: list[tuple[bool, str]] = [
            (m.enable is None or (p.user is not None and p.privileged is not None),
             "modes.enable needs prompts.user and prompts.privileged"),
            (m.disable is None or (p.user is not None and p.privileged is not None),
             "modes.disable needs prompts.user and prompts.privileged"),
            (m.config is None or (p.privileged is not None and p.config is not None),
             "modes.config needs prompts.privileged and prompts.config"),
            (m.config is None or m.end is not None,
             "modes.config needs modes.end, the way back out of config mode"),
            (self.save is None or self.save.mode is None
             or p.of(self.save.mode) is not None,
             f"save.mode is {self.save.mode if self.save else None!r}, but prompts has no "
             "pattern for that mode"),
        ]
        for ok, why in needs:
            if not ok:
                raise ValueError(why)
        return self


# ---- loading --------------------------------------------------------------------------------
def parse_platform(data: Any, source: str) -> Platform:
    """Validate already-loaded YAML data; errors name ``source``, each field and the reason.

    ``name`` defaults to the file's stem when the file does not set it.
    """
    if not isinstance(data, dict):
        raise PlatformError(f"{source}: a platform must be a mapping (got {type(data).__name__})")
    if "name" not in data:
        data = {**data, "name": Path(source).stem}
    try:
        platform = Platform.model_validate(data)
    except ValidationError as exc:
        raise PlatformError(validation_message(source, exc)) from None
    platform._source = source
    return platform


def platform_dirs() -> list[Path]:
    """Where bare platform names are looked up, in order."""
    return data_dirs("platforms")


def load_platform(name_or_path: str | Path) -> Platform:
    """Read a platform by bare name (``"huawei-olt"``) or from a file path."""
    path = locate(name_or_path, "platforms", "platform", PlatformError)
    return parse_platform(read_yaml(path, PlatformError), str(path))
