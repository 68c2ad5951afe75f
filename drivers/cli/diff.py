"""What of a candidate is not on the device yet: a line-based view of CLI configuration (pure).

The running configuration, as the platform's show-running command prints it, is read as a set
of lines, each keyed by the sections it sits in (``interface gpon 0/1`` ... ``quit``). A
candidate line is *present* when the same line (blanks collapsed, after the platform's
rewrites) sits under the same sections; the plan keeps the lines that are not present, with
the section lines around them so they land in the right place.

Limits, by design of a line-based view:

- A line must be written as the device prints it back (``display current-configuration``
  prints serials in hex and quoted, adds defaulted options such as a traffic table); a line
  in another spelling is "missing" and is sent again, and the device may refuse the repeat.
- Removals (``undo ...``, ``no ...``, ``uci delete``) never appear in the running
  configuration. One the platform describes (``removals``: the removal line and the running
  line that shows what it removes) is sent only while that running line is there under the
  same sections, so removing what is already gone sends nothing; any other removal is always
  sent.
- Order inside a section and values the device defaults are invisible to it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.cli.platform import Platform

Key = tuple[tuple[str, ...], str]  # (the section lines around it, the line)


def normalise(line: str) -> str:
    """A line with its blanks collapsed (indentation carries no meaning once keyed)."""
    return " ".join(line.split())


def _matches(line: str, patterns: Sequence[re.Pattern[str]]) -> bool:
    return any(p.search(line) for p in patterns)


def _rewrite(line: str, platform: Platform) -> str:
    for rule in platform.compare_rewrites:
        line = rule.pattern.sub(rule.replace, line)
    return normalise(line)


def running_keys(running: Sequence[str], platform: Platform) -> set[Key]:
    """Every line of the running configuration, keyed by the sections it sits in."""
    enter, leave = platform.sections.enter, platform.sections.exit
    keys: set[Key] = set()
    stack: list[str] = []
    for raw in running:
        line = normalise(raw)
        if not line:
            continue
        if _matches(line, leave):
            if stack:
                stack.pop()
            continue
        keys.add((tuple(stack), line))
        if _matches(line, enter):
            stack.append(line)
    return keys


def _already_removed(line: str, parents: tuple[str, ...], present: set[Key],
                     platform: Platform) -> bool:
    """A removal line the platform describes whose target no running line under the same
    sections shows any more."""
    for rule in platform.removals:
        shows = rule.present_in(line)
        if shows is None:
            continue
        return not any(p == parents and shows.search(text) for p, text in present)
    return False


@dataclass(frozen=True, slots=True)
class Planned:
    """One line to send: its number in the candidate (1-based) and whether it only
    navigates (enters or leaves a section) rather than configures."""

    line_no: int
    line: str
    navigation: bool = False
    new_section: bool = False  # a navigation line whose section is not in running yet


@dataclass(slots=True)
class _Frame:
    planned: Planned
    sent: bool = False


def plan(candidate: Sequence[str], running: Sequence[str] | None,
         platform: Platform) -> list[Planned]:
    """The candidate lines to send, in order: those not present in ``running`` and the
    section lines they need. ``running=None`` (no show-running command): every line."""
    enter, leave = platform.sections.enter, platform.sections.exit
    if running is None:
        return [Planned(n, line, _matches(normalise(line), [*enter, *leave]))
                for n, line in enumerate(candidate, 1) if line.strip()]
    present = running_keys(running, platform)
    out: list[Planned] = []
    stack: list[_Frame] = []
    for n, raw in enumerate(candidate, 1):
        line = normalise(raw)
        if not line:
            continue
        if _matches(line, leave):
            # A section left without a change inside sends neither its entry nor its exit;
            # an exit outside any section of the candidate would leave config mode: dropped.
            if stack:
                frame = stack.pop()
                if frame.sent:
                    out.append(Planned(n, raw, True, frame.planned.new_section))
            continue
        parents = tuple(normalise(f.planned.line) for f in stack)
        if _matches(line, enter):
            new = (parents, _rewrite(raw, platform)) not in present
            stack.append(_Frame(Planned(n, raw, True, new)))
            continue
        if (parents, _rewrite(raw, platform)) in present:
            continue
        if _already_removed(line, parents, present, platform):
            continue
        for frame in stack:
            if not frame.sent:
                out.append(frame.planned)
                frame.sent = True
        out.append(Planned(n, raw))
    return out


def diff_lines(planned: Sequence[Planned]) -> tuple[str, ...]:
    """Unified-diff-like lines: ``+ line`` for what is sent, ``  line`` for section lines
    that only give context (their section exists already)."""
    return tuple(("  " if p.navigation and not p.new_section else "+ ") + p.line.strip()
                 for p in planned)
