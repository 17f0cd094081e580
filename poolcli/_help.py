"""``--help`` that reads at any width: option names are never cut.

Typer builds each help panel as a Rich table whose columns may shrink with an
ellipsis, which at 80 columns turned ``--count-include-pad`` into
``--count-include-…``. Typer (pinned below 0.25 in pyproject.toml) has no
setting for this, so :func:`install` gives its help module a Table whose
option-name columns never wrap or shrink; the metavar and help columns wrap
(at 60 columns and less the metavar folds too, rather than cutting a name).

Imports: rich, typer (the CLI's own dependencies).
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text


class _HelpTable(Table):
    """A help-panel table: every column but the last (the help text) keeps its full width."""

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
