"""``--help`` that reads at 80 columns: option names and metavars are never cut.

Typer builds each help panel as a Rich table whose columns may shrink with an
ellipsis, which at 80 columns turned ``--count-include-pad`` into
``--count-include-…``. Typer (pinned below 0.25 in pyproject.toml) has no
setting for this, so :func:`install` gives its help module a Table whose
name and metavar columns never wrap or shrink: only the help text column
wraps, at word boundaries.

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
        for column in self.columns[:-1]:
            column.no_wrap = True
            column.overflow = "ignore"
        if self.columns:
            self.columns[-1].overflow = "fold"  # a long word in help text folds rather than vanishes


def install() -> None:
    """Use :class:`_HelpTable` for Typer's help panels."""
    import typer.rich_utils as rich_utils

    rich_utils.Table = _HelpTable  # type: ignore[misc]
