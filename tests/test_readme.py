"""The README's promises stay true: its quick start has exactly two commands, and its API
table lists every route the agent serves, with the right role."""

from __future__ import annotations

import re

from agent.api import all_routes
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_quick_start_is_the_demo_and_the_tests() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quick, re.S)
    assert commands == ["python3 -m pip install -e . && ponctl demo",
                        "python3 -m pip install -q -e '.[test]' && python3 -m pytest"]


def test_every_api_route_is_in_the_readme_with_its_role() -> None:
    documented = dict(re.findall(r"^\| `([A-Z]+ /[^`]*)` \| (\w+) \|", README, re.M))
    served = {f"{r.method} {r.path}": r.role or "public" for r in all_routes()}
    assert documented == served
