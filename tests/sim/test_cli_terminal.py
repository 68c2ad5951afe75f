"""Keystrokes to lines and paging, as the SSH session drives them (pure)."""

from __future__ import annotations

from simulator.cli.terminal import MORE, Event, Kind, Terminal


def feed(term: Terminal, text: str) -> list[Event]:
    return [e for ch in text if (e := term.feed(ch)) is not None]


def lines(events: list[Event]) -> list[str]:
    return [e.text for e in events if e.kind == Kind.LINE]


def test_any_line_ending_ends_a_line_once() -> None:
    term = Terminal(echo=False)
    assert lines(feed(term, "a\rb\nc\r\nd\n\n")) == ["a", "b", "c", "d", ""]


def test_echo_only_with_a_pty() -> None:
    assert "".join(e.text for e in feed(Terminal(echo=True), "ab")) == "ab"
    assert "".join(e.text for e in feed(Terminal(echo=False), "ab")) == ""


def test_editing_keys() -> None:
    term = Terminal(echo=True)
    events = feed(term, "dix\x7fsp\x1b[Dlay\r")  # backspace, and a cursor key ignored
    assert lines(events) == ["display"]
    assert any(e.text == "\b \b" for e in events)
    events = feed(term, "junk\x03")
    assert events[-1] == Event(Kind.INTERRUPT, "^C")
    assert lines(feed(term, "ok\t1\n")) == ["ok 1"]
    assert feed(term, "x\x04") == [Event(Kind.ECHO, "x")]  # Ctrl-D only ends an empty line
    assert feed(Terminal(echo=False), "\x04") == [Event(Kind.EOF)]


def test_short_output_is_not_paged() -> None:
    term = Terminal(echo=False)
    assert term.show("a\nb\n", 2) == ("a\nb\n", True)
    assert term.show("a\nb\nc\n", 0) == ("a\nb\nc\n", True)
    assert not term.paging


def test_space_pages_enter_scrolls_q_breaks() -> None:
    text = "".join(f"line {i}\n" for i in range(9))
    term = Terminal(echo=False)
    first, done = term.show(text, 3)
    assert (first, done) == ("line 0\nline 1\nline 2\n" + MORE, False)
    enter = term.feed("\n")
    assert enter is not None
    assert enter.kind == Kind.PAGE
    assert enter.text.endswith("line 3\n" + MORE)
    space = term.feed(" ")
    assert space is not None
    assert space.kind == Kind.PAGE
    assert space.text.endswith("line 4\nline 5\nline 6\n" + MORE)
    assert term.feed("x") is None  # other keys do nothing
    done_event = term.feed("q")
    assert done_event is not None
    assert done_event.kind == Kind.PAGE_DONE
    assert "line" not in done_event.text
    assert not term.paging


def test_paging_ends_on_the_last_page() -> None:
    term = Terminal(echo=False)
    term.show("1\n2\n3\n4\n", 3)
    end = term.feed(" ")
    assert end is not None
    assert end.kind == Kind.PAGE_DONE
    assert end.text.endswith("4\n")


def test_crlf_after_a_command_does_not_turn_the_page() -> None:
    term = Terminal(echo=False)
    assert lines(feed(term, "display\r")) == ["display"]
    term.show("1\n2\n3\n", 2)
    assert term.feed("\n") is None  # the LF of CRLF belongs to the line already ended
    assert term.paging
