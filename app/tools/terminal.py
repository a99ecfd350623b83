"""Tables on the terminal, never cut: a printout stays whole at any width.

Left alone, rich fits a wide table to the terminal by shortening cells to ``…``
and cropping lines. Here a table too wide for the terminal gets column widths
that keep every cell whole and wrap only headers, at spaces; one that cannot fit
even so is printed at full width (the terminal wraps its lines, nothing is lost).
Into a pipe or a file, tables are written at full width, one line per row.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

__all__ = ["print_table"]

_UNBOUNDED = 10_000


def print_table(table: Table, *, stderr: bool = True, console: Console | None = None) -> None:
    """Print ``table`` with no cell shortened (to stderr unless ``stderr=False``).

    Examples
    --------
    >>> import io
    >>> table = Table("story", "interventions / 1k events", title="seeds 1, 2, 3")
    >>> table.add_row("search_frustrated", "12.5")
    >>> narrow = Console(file=io.StringIO(), width=40, force_terminal=True, color_system=None)
    >>> print_table(table, console=narrow)
    >>> print(narrow.file.getvalue(), end="")
                 seeds 1, 2, 3
    ┏━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━┓
    ┃                   ┃ interventions /  ┃
    ┃ story             ┃ 1k events        ┃
    ┡━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━┩
    │ search_frustrated │             12.5 │
    └───────────────────┴──────────────────┘
    """
    console = console or Console(stderr=stderr)
    natural = _measure(console, table).maximum
    if console.is_terminal and (natural <= console.width or _fit(console, table)):
        console.print(table)
        return
    wide = Console(file=console.file, width=natural, force_terminal=console.is_terminal,
                   no_color=console.no_color)  # fmt: skip
    wide.print(table)


def _fit(console: Console, table: Table) -> bool:
    """Fix column widths so that ``table`` fits ``console`` with every cell whole; False
    (and the table as it was) if it cannot, even without its outer border."""
    cells = [[str(cell) for cell in column.cells] for column in table.columns]
    naturals = [
        max([len(str(column.header)), *map(len, column_cells)])
        for column, column_cells in zip(table.columns, cells, strict=True)
    ]
    least = [
        max([*(len(word) for word in str(column.header).split()), *map(len, column_cells), 1])
        for column, column_cells in zip(table.columns, cells, strict=True)
    ]
    drawn = (table.box, table.show_edge, table.pad_edge)
    for lines, edge in ((table.box, table.show_edge), (box.SIMPLE_HEAD, False)):
        table.box, table.show_edge, table.pad_edge = lines, edge, edge
        room = console.width - _chrome(console, table, least)
        if sum(least) <= room:
            widths = _shrink(naturals, least, sum(naturals) - room)
            for column, width in zip(table.columns, widths, strict=True):
                column.width = width
            return True
    table.box, table.show_edge, table.pad_edge = drawn
    for column in table.columns:
        column.width = None
    return False


def _shrink(widths: list[int], least: list[int], excess: int) -> list[int]:
    """Take ``excess`` columns off ``widths``, always from the one with the most to spare.

    Examples
    --------
    >>> _shrink([25, 17, 8], [13, 17, 5], 10)
    [15, 17, 8]
    >>> _shrink([10, 10], [5, 5], 4)
    [8, 8]
    """
    widths = list(widths)
    for _ in range(max(0, excess)):
        spare = [width - low for width, low in zip(widths, least, strict=True)]
        widths[spare.index(max(spare))] -= 1
    return widths


def _chrome(console: Console, table: Table, widths: list[int]) -> int:
    """Borders and padding: the table's width beyond its columns'."""
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
    try:
        return _measure(console, table).maximum - sum(widths)
    finally:
        for column in table.columns:
            column.width = None


def _measure(console: Console, table: Table) -> Measurement:
    return Measurement.get(console, console.options.update_width(_UNBOUNDED), table)
