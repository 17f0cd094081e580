"""Pooling: arrays in, arrays out, with PyTorch's semantics to the last bit.

The top of the package: the mode table (:data:`MODES`, from :mod:`.modes`)
and :func:`pool2d`, which looks a mode up and calls its function. Below it,
composition only goes downward (like ``torch/nn/functional.py`` over ATen's
``Pool.h``)::

    __init__ (pool2d, the table)   modes (names; no NumPy)
        antialias   family          one BlurPool, one APS; reducers over the window
        torch_ops                   max/min/avg/lp (banded), adaptive, global, indices, unpool
        geometry                    PoolGeometry, output size, padding, window view, checks
    poolcli._bands, poolcli._checks the banded engine and padding; argument checks

No core module imports this one. Every function takes (H, W), (C, H, W) or
(N, C, H, W) arrays, keeps float32/float64 (other real dtypes become float64)
and never touches files or terminals (but :func:`load_weights`). The numeric
names are imported on first use (PEP 562), so importing
:mod:`poolcli.pooling.modes` costs no NumPy.

Imports: :mod:`.modes` at import time; :mod:`.geometry`, :mod:`.torch_ops`,
:mod:`.family`, :mod:`.antialias` and :mod:`poolcli._bands` on first use.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, Callable

from .modes import ANTIALIASED_MODES, FAMILY_MODES, MODES, POOL_MODES, PoolMode

# name -> submodule, for the names imported on first use.
_LAZY = {
    **dict.fromkeys(
        ("PADDING_MODES", "PoolGeometry", "pool_geometry", "pad_planes", "window_view", "window_mask",
         "output_length", "adaptive_bins"), "geometry"),
    **dict.fromkeys(
        ("ADAPTIVE_MODES", "max_pool2d", "min_pool2d", "avg_pool2d", "lp_pool2d", "adaptive_pool2d",
         "global_pool2d", "max_pool2d_with_indices", "unpool2d"), "torch_ops"),
    **dict.fromkeys(
        ("median_pool2d", "quantile_pool2d", "mixed_pool2d", "softpool2d", "stochastic_pool2d", "gem_pool2d",
         "family_pool2d", "fractional_sequence", "fractional_max_pool2d", "learned_pool2d", "load_weights"),
        "family"),
    **dict.fromkeys(
        ("BLUR_SIZES", "blur_kernel", "blur2d", "max_blur_pool2d", "aps_downsample", "aps_pool2d"), "antialias"),
    **dict.fromkeys(("set_num_threads", "get_num_threads", "scratch", "BAND_BYTES"), "poolcli._bands"),
    "run_tasks": "poolcli._threads",
}

__all__ = ["MODES", "POOL_MODES", "PoolMode", "FAMILY_MODES", "ANTIALIASED_MODES", "pool2d", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    path = module if module.startswith("poolcli.") else f"{__name__}.{module}"
    value = getattr(importlib.import_module(path), name)
    if name != "BAND_BYTES":  # a setting tests may change: always read it from poolcli._bands
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# What a None argument of pool2d means when the mode's function requires it.
_REQUIRED = {
    "p": "the norm of lp pooling",
    "q": "the quantile, in [0, 1]",
    "weights": "the pooling weights, (k, k) or (C, k, k)",
}


@functools.lru_cache(maxsize=None)
def _parameters(function: Callable[..., Any]) -> tuple[inspect.Parameter, ...]:
    """The mode function's parameters after ``x``."""
    return tuple(inspect.signature(function).parameters.values())[1:]


def _mode_kwargs(mode: PoolMode, given: dict[str, Any]) -> dict[str, Any]:
    """The arguments ``mode.function`` takes; None where it has a default means that default."""
    kwargs = {}
    for param in _parameters(mode.function):
        value = given[param.name]
        if value is None:
            if param.default is not param.empty:
                continue  # the mode's own default (e.g. aps: blur_size=1, stochastic: seed=0)
            if param.name in _REQUIRED:
                raise ValueError(f"{param.name} ({_REQUIRED[param.name]}) is required for mode={mode.name!r}, got None")
        kwargs[param.name] = value
    return kwargs


def pool2d(
    x: Any,
    mode: str,
    size: Any = None,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    p: float | None = None,
    *,
    padding_mode: str = "default",
    blur_size: int | None = None,
    blur_pad: str | None = None,
    pad_off: int | None = None,
    peer: str | None = None,
    criterion: str | None = None,
    ties: str | None = None,
    q: float | None = None,
    alpha: float | None = None,
    train: bool = False,
    seed: Any = None,
    return_indices: bool = False,
    output_size: Any = None,
    ratio: Any = None,
    overlapping: bool = False,
    pseudo_random: bool = True,
    weights: Any = None,
) -> Any:
    """Sliding-window pooling with the semantics of ``torch.nn.functional``.

    Parameters
    ----------
    x : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
        float32 and float64 are kept; other real dtypes become float64.
    mode : str, a key of :data:`MODES`
        ``max`` = ``F.max_pool2d``, ``avg`` = ``F.avg_pool2d``, ``min`` =
        ``-F.max_pool2d(-x)``, ``lp`` = ``F.lp_pool2d`` with norm ``p``.
        The anti-aliased modes: ``blurpool`` = max with ``size``, stride 1
        (and ``padding``, ``dilation``), then a normalised binomial blur of
        ``blur_size`` taps with reflection padding and subsampling by
        ``stride`` (Zhang 2019, adobe/antialiased-cnns' MaxBlurPool);
        ``blur`` = the blur and subsampling alone (``size`` only sets the
        default stride); ``aps`` = max with ``size`` and stride 1 (skipped for
        size 1), an optional blur, then adaptive polyphase sampling (Chaman &
        Dokmanic 2021). With ``padding_mode='circular'`` every step pads by
        wrapping and keeps the size until the subsampling. ``ceil_mode``,
        ``count_include_pad``, ``divisor_override`` do not apply to them.
    size : int or (int, int)
        Window size (PyTorch's ``kernel_size``). Required but for
        ``fractional`` (default 2) and ``learned`` (the weights' size).
    stride : int or (int, int), optional
        Defaults to ``size``.
    padding : int, (int, int), (top, bottom, left, right), 'same' or 'valid'
        An int or a pair pads both sides, PyTorch-style, and must be at most
        ``size // 2``. Four ints pad each side on its own (each smaller than the
        dilated window). ``'same'`` is TensorFlow's: ``out = ceil(H / stride)``,
        total padding ``max(0, (out - 1) * stride + k_eff - H)``, the smaller
        half before; padded values never count. ``'valid'`` is no padding.
        Max pads with -inf, min with +inf, avg and lp with zeros.
    dilation : int or (int, int)
        Spacing between window taps, for the window modes but ``aps`` and
        ``blur`` (PyTorch has it for max only).
    ceil_mode : bool
        Round the output size up; the last window must start inside the input
        or the left padding. Its overhang is never counted by avg.
    count_include_pad : bool
        avg: divide by the number of window taps inside the padded input
        (True) or inside the input itself (False). Ignored for 'same'.
    divisor_override : int, optional
        avg and lp: divide every window sum by this instead.
    p : float, optional
        The norm of ``lp`` pooling (required for it): ``(avg(x**p) * kh * kw) ** (1/p)``,
        PyTorch's composition, which is the p-norm of each full window.
    padding_mode : {'default', 'circular'}, keyword-only
        ``'default'`` is PyTorch's (-inf / +inf / 0 as above). ``'circular'``
        pads with the wrapped-around input (the ceil-mode overhang too), and
        every tap counts: pooling then commutes exactly with circular shifts
        by multiples of the stride (what ``poolcli invariance`` measures).
    blur_size : int, keyword-only
        The binomial blur of the anti-aliased modes (1..7). None (the
        default) is the mode's own default: 3 taps for ``blurpool`` and
        ``blur``, 1 (no blur) for ``aps``, as :func:`aps_pool2d` and the
        stack's ``aps(2)``. (Before, ``pool2d(x, "aps", 2)`` blurred with 3
        taps: the default now lives once, in the mode's function.)
    blur_pad, pad_off, peer, criterion, ties : keyword-only
        The anti-aliased modes' blur padding (``reflect``, ``replicate``,
        ``zero``, ``circular``; antialiased-cnns' ``pad_off``; a ``peer`` =
        ``antialiased-cnns``, ``kornia`` or ``timm`` sets that layer's
        padding) and aps' choice (``criterion``, ``ties``): see
        :mod:`poolcli.pooling.antialias`. None is the mode's default.
    q, alpha, train, seed : keyword-only
        The other family modes (:mod:`poolcli.pooling_family`): ``median``,
        ``quantile`` (``q`` in [0, 1]), ``mixed`` (``alpha * max + (1 - alpha)
        * avg``, default 0.5), ``softpool``, ``stochastic`` (inference
        ``sum(p_i a_i)``; ``train=True`` draws with ``seed``) and ``gem``
        (generalised mean, norm ``p``, default 3). Padded values never count
        for them (mixed: as avg's ``count_include_pad`` says). ``seed=None``
        and ``alpha=None`` are the mode's defaults (0 and 0.5).
    output_size, ratio, overlapping, pseudo_random : keyword-only
        ``fractional`` (TensorFlow's regions, :func:`fractional_max_pool2d`):
        give one of ``output_size`` and ``ratio`` (output / input, in (0, 1]).
    weights : array_like, keyword-only
        ``learned``: (k, k) or (C, k, k) weights (see :func:`load_weights`).
    return_indices : bool, keyword-only
        ``max`` only: also return PyTorch's indices (flat ``ih * W + iw`` into
        each input plane, the first maximum wins), for :func:`unpool2d`.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., OH, OW)``, same dtype as ``x`` (float32 or float64)::

            k_eff = dilation * (size - 1) + 1
            OH = floor((H + pad_top + pad_bottom - k_eff + (stride - 1 if ceil_mode else 0)) / stride) + 1

        less one in ceil mode when the last window would start at or past
        ``H + pad_top``; likewise OW.

    Raises
    ------
    ValueError
        Naming the parameter and quoting its value, wherever PyTorch raises
        and for an empty output.

    Notes
    -----
    ``pool2d`` looks the mode up in :data:`MODES` and calls its function with
    the arguments that function takes (the others are ignored); ``None`` for
    an argument the function has a default for means that default. So
    ``pool2d(x, m, ...)``, ``MODES[m].function(x, ...)``, the stack's
    ``m(...)`` and ``poolcli run --pool m`` compute the same thing.

    Examples
    --------
    A 2x2 window with stride 2 halves each side:

    >>> import numpy as np
    >>> x = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> pool2d(x, "max", 2)
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    >>> pool2d(x, "avg", 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    >>> pool2d(x, "avg", 3, stride=2, padding=1, count_include_pad=False)
    array([[ 2.5,  4. ],
           [ 8.5, 10. ]], dtype=float32)
    >>> pool2d(x, "max", 3, stride=2, ceil_mode=True).shape
    (2, 2)
    >>> bool(np.array_equal(pool2d(x, "aps", 2), MODES["aps"].function(x, 2, blur_size=1)))
    True
    """
    from .geometry import check_divisor_override, check_padding_mode

    name = str(mode).lower()
    if name not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    circular = check_padding_mode(padding_mode)
    check_divisor_override(divisor_override)
    if return_indices:
        if name != "max" or circular:
            raise ValueError(f"return_indices=True needs mode='max' with the default padding, got mode={name!r}")
        from .torch_ops import max_pool2d_with_indices

        return max_pool2d_with_indices(x, size, stride, padding, dilation, ceil_mode)
    # Only the arguments the mode's function takes are passed, and None means
    # the function's own default: so blur_size=None gives aps 1 tap (no blur),
    # as aps_pool2d and the stack's aps(2) do (pool2d used to blur aps with 3).
    given = dict(
        size=size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
        count_include_pad=count_include_pad, divisor_override=divisor_override, p=p, padding_mode=padding_mode,
        blur_size=blur_size, blur_pad=blur_pad, pad_off=pad_off, peer=peer, criterion=criterion, ties=ties, q=q, alpha=alpha, train=train, seed=seed, output_size=output_size, ratio=ratio,
        overlapping=overlapping, pseudo_random=pseudo_random, weights=weights,
    )
    entry = MODES[name]
    return entry.function(x, **_mode_kwargs(entry, given))
