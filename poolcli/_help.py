"""``--help`` that reads at any width: option names are never cut.

Typer builds each help panel as a Rich table whose columns may shrink with an
ellipsis, which at 80 columns turned ``--count-include-pad`` into
``--count-include-…``. Typer (pinned below 0.25 in pyproject.toml) has no
setting for this, so :func:`install` gives its help module a Table whose
option-name columns never wrap or shrink; the metavar and help columns wrap
(at 60 columns and less the metavar folds too, rather than cutting a name).

Where the names and metavars leave the help text too narrow a column to read
(fewer than :data:`MIN_HELP` cells: at 80 columns the Output panel's pairs such
as ``--montage --no-montage`` beside ``[auto|kitty|sixel|blocks]`` left it 17,
one or two words a line), the panel is printed as pip and git print theirs:
each option's names and metavar on one line, its help below, indented, at the
panel's full width.

Imports: rich, typer (the CLI's own dependencies).
"""

from __future__ import annotations

from typing import Any

from rich.padding import Padding
from rich.table import Table
from rich.text import Text

MIN_HELP = 32
"""Narrowest help column (cells) printed beside the option names; narrower, the help goes below them."""
_INDENT = 4


class _HelpTable(Table):
    """A help-panel table: every column but the last (the help text) keeps its full width; when the help
    column would be narrower than :data:`MIN_HELP`, each row's help goes below its names (:meth:`_stacked`)."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        for r in renderables[-1:]:  # the help text: a Text, or Typer's Columns of Texts
            for text in getattr(r, "renderables", [r]):
                if isinstance(text, Text):
                    text.overflow = "fold"
        super().add_row(*renderables, **kwargs)
        for column, cell in zip(self.columns[:-2], renderables):  # the option names: whole, always
            column.no_wrap = True
            column.overflow = "ignore"
            width = Text.from_markup(cell).cell_len if isinstance(cell, str) else getattr(cell, "cell_len", 0)
            column.min_width = max(column.min_width or 0, width)  # the others give way first
        for column in self.columns[-2:]:  # the metavar and the help text: they give way in a narrow terminal,
            column.overflow = "fold"  # folding a long word rather than hiding it

    def __rich_console__(self, console: Any, options: Any) -> Any:
        if len(self.columns) > 2 and self.row_count and self._help_width(console, options) < MIN_HELP:
            yield from self._stacked()
            return
        yield from super().__rich_console__(console, options)

    def _help_width(self, console: Any, options: Any) -> int:
        """The cells the help column gets beside the names (what Rich's own layout gives it)."""
        try:
            return self._calculate_column_widths(console, options)[-1]
        except AttributeError:  # a Rich without this (private) method: keep its own layout
            return MIN_HELP

    def _stacked(self) -> Any:
        """Each row as ``--name, -n / --no-name METAVAR`` on a line (Click's own notation), then its help
        indented below it."""
        for i in range(self.row_count):
            cells = [_text(column._cells[i]) for column in self.columns]
            names = cells[:-1]
            if len(names) in (5, 6):  # Typer's option rows: [required], long, short, negative long and short, metavar
                *required, long, short, neg_long, neg_short, metavar = names
                flags = _joined(" / ", _joined(", ", long, short), _joined(", ", neg_long, neg_short))
                head = _joined(" ", *required, flags, metavar)
            else:
                head = _joined(" ", *names)
            head.overflow = "fold"
            yield head
            yield Padding(self.columns[-1]._cells[i], (0, 0, 0, _INDENT))


def _text(cell: Any) -> Text:
    if isinstance(cell, Text):
        return cell
    return Text.from_markup(cell) if isinstance(cell, str) else Text()


def _joined(sep: str, *texts: Text) -> Text:
    """The non-blank ``texts`` joined by ``sep`` (styles kept)."""
    return Text(sep).join(t for t in texts if t.plain.strip())


def install() -> None:
    """Use :class:`_HelpTable` for Typer's help panels, from the first help printed.

    ``typer.rich_utils`` imports ``rich.markdown`` and ``markdown_it`` (30 ms,
    measured): a run that prints no help does not import it (Typer imports it
    only to print help or an error), so it is patched when help is formatted.
    """
    import sys

    import typer.core

    if "typer.rich_utils" in sys.modules:
        _patch()
        return
    for cls in (typer.core.TyperCommand, typer.core.TyperGroup):
        if getattr(cls.format_help, "_poolcli", False):
            continue
        original = cls.format_help

        def format_help(self, ctx, formatter, _original=original):
            _patch()
            return _original(self, ctx, formatter)

        format_help._poolcli = True  # type: ignore[attr-defined]
        cls.format_help = format_help  # type: ignore[method-assign]


def _patch() -> None:
    import typer.rich_utils as rich_utils

    rich_utils.Table = _HelpTable  # type: ignore[misc]
