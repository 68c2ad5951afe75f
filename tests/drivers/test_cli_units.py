"""The pure halves of the CLI driver: terminal text, the line-based compare, platform files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drivers.cli import Platform, PlatformError, load_platform
from drivers.cli.diff import diff_lines, plan, running_keys
from drivers.cli.platform import parse_platform, platform_dirs
from drivers.cli.text import clean, first_error, last_line, render_line, split_reply, without
from drivers.datafiles import CONFIGS_ENV

PROMPT = re.compile(r"^[\w.-]+(?:\([\w/.:-]+\))?[>#]$")
MORE = "---- More ( Press 'Q' to break ) ----"


# ---- terminal text -------------------------------------------------------------------------
def test_carriage_returns_and_backspaces_redraw_the_line() -> None:
    erase = "\r" + " " * len(MORE) + "\r"
    assert render_line(MORE + erase + "next line") == "next line" + " " * (len(MORE) - 9)
    assert clean(f"a\r\n{MORE}{erase}b\r\n")[1] == "b"
    assert render_line("abc\b\bX") == "aXc"
    assert render_line("plain") == "plain"


def test_ansi_sequences_and_controls_are_removed() -> None:
    raw = "\x1b[1;31mred\x1b[0m \x1b]0;title\x07ok\x07\x1b=\r\n\x1b[?2004hOLT1#"
    assert clean(raw) == ["red ok", "OLT1#"]
    assert last_line("out\r\nroot@gw1:~# ") == "root@gw1:~#"


def test_split_reply_strips_echo_prompt_and_blank_edges() -> None:
    raw = "display version\r\n  VERSION : V3\r\n\r\nOLT1>"
    reply = split_reply(raw, "display version", PROMPT)
    assert reply == split_reply(raw.replace("\r\n", "\n"), "display version", PROMPT)
    assert reply.output == "  VERSION : V3"
    assert reply.prompt == "OLT1>"
    # No echo (a device without one): the first line is output and stays.
    assert split_reply("VERSION\nOLT1>", "display version", PROMPT).output == "VERSION"
    # Nothing typed (the banner): nothing is taken for an echo.
    assert split_reply("\n  Welcome\n\nOLT1>", None, PROMPT).output == "  Welcome"
    assert split_reply("OLT1#", "quit", PROMPT).output == ""


def test_first_error_and_volatile_lines() -> None:
    errors = [re.compile(r"^\s*Failure:"), re.compile(r"^\s*% ")]
    out = "            ^\n  % Unknown command, the error locates at '^'"
    assert first_error(out, errors) == "  % Unknown command, the error locates at '^'"
    assert first_error("  fine\n  also fine", errors) is None
    volatile = [re.compile(r"autofind time\s*:")]
    assert without(["a", "   Ont autofind time   : 2026-01-01", "b"], volatile) == ["a", "b"]


# ---- compare -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def huawei() -> Platform:
    return load_platform("huawei-olt")


RUNNING = ["#", "[gpon]", "  <gpon-0/1>", " interface gpon 0/1",
           ' ont add 0 1 sn-auth "534C4E4B0000AB01" omci ont-lineprofile-id 10',
           " ont port native-vlan 0 1 eth 1 vlan 10", " quit", "#",
           " service-port 1 vlan 100 gpon 0/1/0 ont 1 gemport 1001", "return"]


def test_running_lines_are_keyed_by_their_section(huawei: Platform) -> None:
    keys = running_keys(RUNNING, huawei)
    assert (("interface gpon 0/1",), "ont port native-vlan 0 1 eth 1 vlan 10") in keys
    assert ((), "service-port 1 vlan 100 gpon 0/1/0 ont 1 gemport 1001") in keys
    assert ((), "ont port native-vlan 0 1 eth 1 vlan 10") not in keys


def test_plan_sends_missing_lines_with_their_sections(huawei: Platform) -> None:
    candidate = ["interface gpon 0/1", "ont port native-vlan 0 1 eth 1 vlan 10",
                 "ont port  native-vlan 0 1 eth 2 vlan 20", "quit",
                 "interface gpon 0/2", "ont port native-vlan 0 1 eth 1 vlan 10", "quit",
                 "service-port 1 vlan 100 gpon 0/1/0 ont 1 gemport 1001",
                 "undo service-port 1"]
    planned = plan(candidate, RUNNING, huawei)
    assert [p.line_no for p in planned] == [1, 3, 4, 5, 6, 7, 9]
    assert diff_lines(planned) == (
        "  interface gpon 0/1", "+ ont port  native-vlan 0 1 eth 2 vlan 20", "  quit",
        "+ interface gpon 0/2", "+ ont port native-vlan 0 1 eth 1 vlan 10", "+ quit",
        "+ undo service-port 1")


def test_a_removal_of_what_is_gone_is_not_sent(huawei: Platform) -> None:
    # The platform's `removals` say which running line shows what each removal removes.
    candidate = ["undo service-port 1", "undo service-port 7", "undo service-port 10",
                 "interface gpon 0/1", "ont delete 0 1", "ont delete 0 2", "quit",
                 "interface gpon 0/2", "ont delete 0 1", "quit"]
    assert diff_lines(plan(candidate, RUNNING, huawei)) == (
        "+ undo service-port 1", "  interface gpon 0/1", "+ ont delete 0 1", "  quit")
    gone = [line for line in RUNNING if "service-port" not in line and "ont add" not in line]
    assert plan(candidate, gone, huawei) == []
    # a removal no rule describes is still always sent
    assert diff_lines(plan(["undo vlan 7"], gone, huawei)) == ("+ undo vlan 7",)


def test_a_removal_rule_must_name_groups_its_pattern_has(tmp_path: Path) -> None:
    data = load_platform("huawei-olt").model_dump(mode="json")
    for present, why in ((r"^service-port \2 ", "group 2"), (r"^service-port \g<x> ", "'x'"),
                         (r"^service-port (\1 ", "not a valid regular expression")):
        data["removals"] = [{"pattern": r"^undo service-port (\d+)$", "present": present}]
        with pytest.raises(PlatformError, match=re.escape(why)):
            parse_platform(data, "bad.yaml")


def test_plan_of_applied_lines_is_empty(huawei: Platform) -> None:
    applied = ["interface gpon 0/1", "ont port native-vlan 0 1 eth 1 vlan 10", "quit",
               "  service-port 1 vlan 100 gpon 0/1/0 ont 1 gemport 1001"]
    assert plan(applied, RUNNING, huawei) == []
    # A stray exit would leave config mode: it is not sent.
    assert plan(["quit"], RUNNING, huawei) == []


def test_plan_without_a_running_config_sends_everything(huawei: Platform) -> None:
    planned = plan(["interface gpon 0/1", "", "quit"], None, huawei)
    assert [(p.line_no, p.navigation) for p in planned] == [(1, True), (3, True)]


def test_rewrites_map_candidate_lines_to_the_show_form() -> None:
    uci = load_platform("openwrt-uci")
    running = ["ponctl.analytics=analytics", "ponctl.analytics.phan_url='https://x/y'",
               "ponctl.wan.vlan='42'"]
    candidate = ["uci set ponctl.analytics.phan_url='https://x/y'", "uci set ponctl.wan.vlan=42",
                 "uci set ponctl.wan.vlan=43"]
    assert diff_lines(plan(candidate, running, uci)) == ("+ uci set ponctl.wan.vlan=43",)


# ---- platform files ------------------------------------------------------------------------
def test_shipped_platforms_load() -> None:
    for name in ("huawei-olt", "openwrt-uci", "linux-shell"):
        platform = load_platform(name)
        assert platform.name == name
        assert platform.source.endswith(f"configs/platforms/{name}.yaml")
    huawei = load_platform("huawei-olt")
    assert [huawei.mode_of(p) for p in ("OLT1>", "OLT1#", "OLT1(config)#",
                                        "OLT1(config-if-gpon-0/1)#", "junk")] == [
        "user", "privileged", "config", "sub_config", None]
    assert all(huawei.prompts.any.search(p) for p in ("OLT1>", "OLT1(config-if-gpon-0/1)#"))


def _write(tmp_path: Path, body: str, name: str = "dialect.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_errors_name_the_file_the_field_and_the_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, "prompts:\n  any: '^x$'\nerrors: ['^ok', '(unclosed']\n"
                            "colour: blue\ntimeout: -1\n")
    with pytest.raises(PlatformError) as info:
        load_platform(path)
    text = str(info.value)
    assert f"{path}: errors[1]: invalid regular expression '(unclosed': missing )" in text
    assert f"{path}: colour: Extra inputs are not permitted" in text
    assert f"{path}: timeout: Input should be greater than 0" in text


def test_inconsistent_modes_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "prompts: {any: '^x[>#]$', privileged: '^x#$'}\n"
                            "modes: {config: conf}\n")
    with pytest.raises(PlatformError, match=r"modes.config needs prompts.privileged and "
                                            r"prompts.config"):
        load_platform(path)
    with pytest.raises(PlatformError, match="not valid YAML"):
        load_platform(_write(tmp_path, "prompts: [unclosed\n", "bad.yaml"))
    with pytest.raises(PlatformError, match="must be a mapping"):
        load_platform(_write(tmp_path, "- a list\n", "list.yaml"))
    with pytest.raises(PlatformError, match="cannot read"):
        load_platform(tmp_path / "missing.yaml")
    with pytest.raises(PlatformError, match="inline: prompts: Field required"):
        parse_platform({}, "inline")


def test_bare_names_are_found_through_the_environment(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "platforms").mkdir()
    _write(tmp_path / "platforms", "prompts: {any: '^lab\\$$'}\n", "lab-box.yaml")
    monkeypatch.setenv(CONFIGS_ENV, str(tmp_path))
    assert platform_dirs()[0] == tmp_path / "platforms"
    assert load_platform("lab-box").name == "lab-box"  # the file's stem when unnamed
    assert load_platform("huawei-olt").name == "huawei-olt"  # the checkout's still found
    with pytest.raises(PlatformError, match=r"no platform 'nope'.*known: .*lab-box"):
        load_platform("nope")
    with pytest.raises(PlatformError, match="not a platform name"):
        load_platform("..")
