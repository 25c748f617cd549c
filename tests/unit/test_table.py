"""The CLI's tables show sender-chosen text without letting it act on the terminal."""

from datetime import UTC, datetime

from tracker.cli.table import render, shown, when


def test_control_and_format_characters_are_shown_escaped() -> None:
    assert shown("d-1") == "d-1"
    assert shown("d\n-1") == "d\\n-1"
    assert shown("\x1b[2Jgone") == "\\x1b[2Jgone"
    assert shown("abc\u202edcba") == "abc\\u202edcba"  # right-to-left override
    assert shown("émoji 🚀 ß") == "émoji 🚀 ß"  # printable text stays as it is


def test_table_cells_are_escaped_and_aligned() -> None:
    table = render(["ID", "STATE"], [("a\tb", "idle"), ("c", None)])
    assert table.splitlines() == ["ID    STATE", "a\\tb  idle", "c     -"]


def test_year_one_is_written_with_four_digits() -> None:
    assert when(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01 00:00:00Z"
