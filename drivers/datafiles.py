"""Finding and reading the project's data files (CLI platforms, device profiles, settings).

Bare names are looked up in ``$PONCTL_CONFIGS/<kind>/``, then the checkout's
``configs/<kind>/``, then ``./configs/<kind>/``; errors name the file, the field and the reason.
Shared by ``drivers`` and ``agent`` (which may import drivers, never the reverse).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

CONFIGS_ENV = "PONCTL_CONFIGS"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as people write it: ``devices[0].ssh.password``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validation_message(source: str, exc: ValidationError) -> str:
    """One ``source: field: reason`` line per problem (never echoing the input value)."""
    lines: list[str] = []
    for e in exc.errors():
        line = f"{source}: {field_path(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def data_dirs(kind: str) -> list[Path]:
    """Where bare names of this kind (e.g. ``platforms``) are looked up, in order."""
    dirs: list[Path] = []
    env = os.environ.get(CONFIGS_ENV)
    if env:
        dirs.append(Path(env) / kind)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "configs" / kind
        if candidate.is_dir():
            dirs.append(candidate)
            break
    dirs.append(Path.cwd() / "configs" / kind)
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def locate(name_or_path: str | Path, kind: str, what: str,
           error: type[ValueError]) -> Path:
    """The file for a bare name (looked up in ``data_dirs(kind)``) or a path as given.

    A string containing a path separator or ending in ``.yaml``/``.yml`` is a path.
    """
    text = str(name_or_path)
    if (isinstance(name_or_path, Path) or os.sep in text or "/" in text
            or text.endswith((".yaml", ".yml"))):
        return Path(name_or_path)
    if not NAME.fullmatch(text):
        raise error(f"{text!r} is not a {what} name (letters, digits, '.', '_', '-')")
    dirs = data_dirs(kind)
    for d in dirs:
        for ext in (".yaml", ".yml"):
            path = d / f"{text}{ext}"
            if path.is_file():
                return path
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.y*ml")})
    raise error(f"no {what} {text!r} in {', '.join(str(d) for d in dirs)}"
                f" (known: {', '.join(known) or 'none'}; set ${CONFIGS_ENV} to the "
                "configs directory to look elsewhere)")


def read_yaml(path: Path, error: type[ValueError]) -> Any:
    """A YAML file's data (``safe_load``); unreadable or invalid files raise ``error``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
