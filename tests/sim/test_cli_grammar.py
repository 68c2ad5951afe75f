"""The command grammar: tokens, abbreviations, and where each kind of error is located."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from simulator.cli.grammar import CliSyntaxError, ErrorKind, Grammar, Token, tokenize


def _num(text: str) -> object:
    if not text.isdigit() or int(text) > 127:
        raise ValueError(text)
    return int(text)


def _grammar() -> Grammar[str]:
    g: Grammar[str] = Grammar({"id": _num, "text": str})
    g.add("display ont info <id> all", ["v"], "table")
    g.add("display ont info <id> <ont:id>", ["v"], "detail")
    g.add("display ont autofind all", ["v"], "autofind")
    g.add("display onu", ["v"], "onu")
    g.add("ont add <id> [desc <d:text>]", ["v"], "add")
    g.add("save", ["other"], "save")
    return g


def _match(line: str) -> tuple[str, dict[str, object]]:
    action, args = _grammar().match("v", tokenize(line), len(line.rstrip()))
    return action, args.values


def _error(line: str) -> CliSyntaxError:
    with pytest.raises(CliSyntaxError) as info:
        _match(line)
    return info.value


def test_tokenize_keeps_columns_and_quoted_text() -> None:
    assert tokenize('  ont add 1 desc "Flat 3, rear"') == [
        Token("ont", 2), Token("add", 6), Token("1", 10), Token("desc", 12),
        Token("Flat 3, rear", 17, quoted=True)]


@pytest.mark.parametrize(("line", "column"), [('desc "open', 5), ('desc "a"b', 8)])
def test_bad_quoting_is_a_parameter_error(line: str, column: int) -> None:
    with pytest.raises(CliSyntaxError) as info:
        tokenize(line)
    assert (info.value.kind, info.value.column) == (ErrorKind.PARAMETER, column)


def test_keyword_beats_argument_and_arguments_convert() -> None:
    assert _match("display ont info 3 all") == ("table", {"id": 3})
    assert _match("display ont info 3 5") == ("detail", {"id": 3, "ont": 5})


def test_unambiguous_prefixes_abbreviate_keywords() -> None:
    assert _match("disp ont autof all") == ("autofind", {})
    assert _match("d ont i 1 a") == ("table", {"id": 1})


def test_optional_tail() -> None:
    assert _match("ont add 4") == ("add", {"id": 4})
    assert _match('ont add 4 desc "x y"') == ("add", {"id": 4, "d": "x y"})


@pytest.mark.parametrize(("line", "kind", "column"), [
    ("displya ont", ErrorKind.UNKNOWN, 0),
    ("display ont bogus", ErrorKind.UNKNOWN, 12),
    ("display ont info 300 all", ErrorKind.PARAMETER, 17),
    ("display ont info", ErrorKind.INCOMPLETE, 17),
    ("display ont info 1", ErrorKind.INCOMPLETE, 19),
    ("display ont autofind all extra", ErrorKind.TOO_MANY, 25),
    ("display on", ErrorKind.AMBIGUOUS, 8),
    ("save", ErrorKind.UNKNOWN, 0),  # exists, but not in this view
])
def test_errors_are_located(line: str, kind: ErrorKind, column: int) -> None:
    err = _error(line)
    assert (err.kind, err.column) == (kind, column)


def test_render_puts_the_caret_under_the_column() -> None:
    render: Callable[[int], str] = CliSyntaxError(ErrorKind.UNKNOWN, 4).render
    assert render(0) == "    ^\n  % Unknown command, the error locates at '^'"
    assert render(5).splitlines()[0] == " " * 9 + "^"
