"""The invariance plot (matplotlib, the optional extra ``poolcli[plot]``).

What this module knows: how the records of an ``invariance`` run look as a
figure (PNG bytes), and whether matplotlib is installed. Imports matplotlib
lazily and nothing from poolcli; :mod:`poolcli.jobs.invariance` writes the file.
``PLOT_HINT`` contains ``[plot]``: print it as plain text, not Rich markup.
"""

from __future__ import annotations

import io
from typing import Any

PLOT_HINT = "install the plot extra for invariance.png: pip install 'poolcli[plot]'"


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def invariance_plot(records: list[dict[str, Any]], title: str = "") -> bytes:
    """PNG bytes: ``equiv_rel_l2`` against shift, one line per method, one panel per stage.

    Values are averaged over inputs when several are given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in records))
    # One panel per stage index; the methods differ only in their pooling stages.
    first = {}
    for r in records:
        first.setdefault(r["stage"], r["spec"] if r["method"] == records[0]["method"] else r["stage_name"])
    stages = sorted(first.items())
    shifts = list(dict.fromkeys(tuple(r["shift"]) for r in records))
    one_axis = all(dy == 0 for dy, _ in shifts) or all(dx == 0 for _, dx in shifts) or all(dy == dx for dy, dx in shifts)
    xs = [max(dy, dx, key=abs) if one_axis else i for i, (dy, dx) in enumerate(shifts)]
    n = len(stages)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False, sharey=True)
    cell: dict[tuple, list[float]] = {}
    for r in records:
        if r["equiv_rel_l2"] is not None:
            cell.setdefault((r["method"], r["stage"], tuple(r["shift"])), []).append(r["equiv_rel_l2"])
    for k, (index, spec) in enumerate(stages):
        ax = axes[k // cols][k % cols]
        for method in methods:
            ys = []
            for s in shifts:
                vs = cell.get((method, index, s), [])
                ys.append(sum(vs) / len(vs) if vs else float("nan"))
            ax.plot(xs, ys, marker="o", label=method)
        pooled = len({r["stage_name"] for r in records if r["stage"] == index}) > 1
        ax.set_title(f"stage {index}: " + ("pooling (per method)" if pooled else spec), fontsize=8)
        ax.set_xlabel("shift (px)" if one_axis else "shift (dy,dx)")
        if not one_axis:
            ax.set_xticks(xs, [f"{dy},{dx}" for dy, dx in shifts], rotation=60, fontsize=6)
        ax.grid(alpha=0.3)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].set_ylabel("equiv_rel_l2")
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
