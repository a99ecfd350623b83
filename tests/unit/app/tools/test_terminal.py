"""Tables the commands print are never cut: at 120 columns, narrower, and into a pipe."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from app.tools import eval_command
from app.tools.evaluation import COLUMNS, StoryQuality
from app.tools.terminal import print_table

ROWS = [
    StoryQuality("search_frustrated", 12_345, 1_234, 1_200, 1_100, 11_111, 2, 12, 30, 500_000,
                 123_456.0, 1_234_567.0),
    StoryQuality("all", 99_999, 9_999, 9_000, 8_000, 90_000, 20, 120, 3_000, 5_000_000,
                 12.0, 20.0),
]  # fmt: skip


def _terminal(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)


def _pipe(width: int = 80) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=False)


def _eval_table_through(console: Console) -> list[str]:
    eval_command._print(console, "Comparison: seeds 1, 2, 3, variant tuning", ROWS)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [120, 140])
def test_the_eval_table_on_a_narrow_terminal_keeps_every_cell_and_fits(width):
    lines = _eval_table_through(_terminal(width))
    assert max(len(line) for line in lines) <= width
    text = "\n".join(lines)
    assert "…" not in text
    for row in ROWS:
        for cell in row.cells():
            assert cell in text
    assert "interventions" in text  # headers wrap at spaces, whole words


def test_the_eval_table_on_a_terminal_too_narrow_for_it_goes_out_whole():
    lines = _eval_table_through(_terminal(80))
    text = "\n".join(lines)
    assert "…" not in text and "interventions / 1k events" in text
    assert sum("search_frustrated" in line for line in lines) == 1


def test_the_eval_table_into_a_pipe_has_one_line_per_row_with_whole_headers():
    lines = _eval_table_through(_pipe(width=80))
    header = next(line for line in lines if "story" in line)
    for column in COLUMNS:
        assert column in header
    for row in ROWS:
        assert sum(row.story in line for line in lines) == 1


def test_a_table_that_fits_is_printed_as_it_is():
    table = Table("a", "b")
    table.add_row("1", "2")
    wide, plain = _terminal(120), _terminal(120)
    print_table(table, console=wide)
    plain.print(table)
    assert wide.file.getvalue() == plain.file.getvalue()  # type: ignore[attr-defined]


def test_a_table_too_wide_for_any_fit_goes_out_whole_for_the_terminal_to_wrap():
    table = Table("story", "note")
    table.add_row("x" * 70, "y" * 70)
    console = _terminal(100)
    print_table(table, console=console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "x" * 70 in text and "y" * 70 in text and "…" not in text
