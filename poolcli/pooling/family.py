"""The rest of the pooling family: median, quantile, mixed, SoftPool, stochastic, GeM,
fractional max and learned (depthwise) pooling.

Knows: reducers over the window primitive of :mod:`.geometry` (scikit-image's
``block_reduce`` over ``view_as_blocks``: the window low, the reducer on top),
fractional max pooling's regions, learned pooling's weights (and
:func:`load_weights`, the one file loader here). Arrays in, arrays out:
inputs are (H, W), (C, H, W) or (N, C, H, W); float32 and float64 are kept,
other real dtypes become float64. The sliding-window modes take pool2d's
parameter set (``size``, ``stride``, ``padding`` incl. ``'same'``,
``'valid'`` and per-side ``(top, bottom, left, right)``, ``dilation``,
``ceil_mode``, ``padding_mode``) and resolve it with
:func:`.geometry.pool_geometry`, so their output sizes are pool2d's. With
``padding_mode='circular'`` the input is wrap-padded to exactly the extent
the windows read and pooled without padding.

Padded taps (the user's padding, TensorFlow 'same' padding and the ceil-mode
overhang) never count in median, quantile, SoftPool, stochastic and GeM
pooling: they are excluded, not filled. A window with no input tap at all (only
possible with per-side or 'same' padding and a dilated window that straddles
the input) gives NaN for median, quantile, SoftPool and GeM and 0 for
stochastic pooling.

How it computes (no Python loop over pixels): a loop over the ``kh * kw``
window offsets with strided views of the padded input, accumulating into
whole-output arrays; median and quantile sort a ``(P, OH, OW, kh * kw)`` stack
of the taps (:func:`.geometry.window_view`), which costs ``kh * kw`` times the
output in memory.

References: fractional max pooling with given samples equals
``F.fractional_max_pool2d`` (PyTorch 2.13 golden fixtures,
``tests/data/make_family_golden.py``); learned pooling equals
``F.conv2d(..., groups=C)``. PyTorch has no median pooling (pytorch#45009):
median, quantile, SoftPool (Stergiou et al. 2021), stochastic (Zeiler & Fergus
2013), GeM (Radenovic et al. 2018) and mixed pooling are tested against a
brute-force reference.

The ``*_mode`` functions are the pooling-mode table's entries
(:data:`poolcli.pooling.MODES`) where a public function's signature differs
from the mode's (the stack language's defaults: ``seed=0``; no ``eps``).

Imports: numpy, :mod:`poolcli._checks`, :mod:`.geometry`, :mod:`.torch_ops`
and the names of :mod:`.modes` only.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .._checks import as_float_array, as_planes, is_int, pair, restore_planes
from .geometry import (
    PoolGeometry,
    check_padding_mode,
    make_rng,
    pad_planes,
    pool_geometry,
    positive_number,
    real_counts,
    unit_number,
    window_taps,
    window_view,
)
from .modes import FAMILY_MODES  # mode names come from the one table
from .torch_ops import avg_pool2d, max_pool2d


__all__ = [
    "FAMILY_MODES",
    "quantile_pool2d",
    "median_pool2d",
    "mixed_pool2d",
    "softpool2d",
    "stochastic_pool2d",
    "gem_pool2d",
    "family_pool2d",
    "fractional_sequence",
    "fractional_max_pool2d",
    "learned_pool2d",
    "load_weights",
    "stochastic_mode",
    "gem_mode",
    "fractional_mode",
    "learned_mode",
]


# ----------------------------------------------------------------------------- circular


def _circular(fn, x: Any, size, stride, padding, dilation, ceil_mode, **kw) -> np.ndarray:
    """``fn`` over the input wrap-padded to exactly the extent the windows read, then unpadded."""
    planes, lead = as_planes(x)
    g = pool_geometry(planes.shape[1:], size, stride, padding, dilation, ceil_mode)
    xp = pad_planes(planes, g, 0.0, circular=True)
    return restore_planes(fn(xp, g.size, g.stride, 0, g.dilation, False, **kw), lead)

# ----------------------------------------------------------------------------- median / quantile


def _quantile_planes(planes: np.ndarray, g: PoolGeometry, q: float) -> np.ndarray:
    hw = planes.shape[1:]
    win = window_view(planes, g, np.nan)  # (P, OH, OW, T)
    taps = win.shape[-1]
    counts = real_counts(g, hw)
    # A real NaN: more NaN taps than padded ones.
    real_nan = np.isnan(win).sum(axis=-1) > (taps - counts)
    win.sort(axis=-1)  # NaN (the padded taps) last; the first `count` are the real values
    out = np.full((planes.shape[0],) + g.out, np.nan, dtype=planes.dtype)
    for n in np.unique(counts):
        if n == 0:
            continue
        sel = counts == n
        out[:, sel] = np.quantile(win[:, sel, :n], q, axis=-1)
    out[real_nan] = np.nan
    return out


def quantile_pool2d(
    x: Any,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    *,
    q: float,
    padding_mode: str = "default",
) -> np.ndarray:
    """Quantile pooling: the ``q``-quantile of each window's input taps.

    ``out = np.quantile(taps, q)`` with NumPy's default ``method='linear'``:
    sort the ``n`` input taps, ``pos = q * (n - 1)``, interpolate linearly
    between the values at ``floor(pos)`` and ``ceil(pos)``. Padded taps never
    count (each window uses only its taps inside the input); a NaN among the
    input taps gives NaN. ``q=0`` is the min, ``q=1`` the max of the input taps.
    PyTorch has no quantile or median pooling (pytorch#45009); tested against a
    brute-force ``np.quantile`` per window, bit for bit.

    Parameters
    ----------
    x : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
    size, stride, padding, dilation, ceil_mode
        As :func:`poolcli.pooling.pool2d` (same output size).
    q : float in [0, 1], keyword-only
    padding_mode : {'default', 'circular'}, keyword-only
        ``'circular'``: the padding holds the wrapped-around input, and counts.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., OH, OW)``, x's float dtype.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1., 2., 9., 0.], [3., 4., 5., 5.]])
    >>> quantile_pool2d(x, 2, q=0.25)
    array([[1.75, 3.75]])
    >>> quantile_pool2d(x, 3, stride=2, padding=1, q=1.0)
    array([[4., 9.]])
    """
    if check_padding_mode(padding_mode):
        return _circular(quantile_pool2d, x, size, stride, padding, dilation, ceil_mode, q=q)
    q = unit_number(q, "q")
    planes, lead = as_planes(x)
    g = pool_geometry(planes.shape[1:], size, stride, padding, dilation, ceil_mode)
    return restore_planes(_quantile_planes(planes, g, q), lead)


def median_pool2d(
    x: Any,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    *,
    padding_mode: str = "default",
) -> np.ndarray:
    """Median pooling: :func:`quantile_pool2d` with ``q=0.5``.

    An even number of input taps gives the mean of the two middle values,
    computed as NumPy's linear interpolation ``a + 0.5 * (b - a)`` (which may
    differ from ``np.median``'s ``(a + b) / 2`` in the last bit). Padded taps
    never count; NaN propagates.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1., 7., 2.], [3., 0., 9.], [4., 4., 8.]])
    >>> median_pool2d(x, 3, stride=1, padding="same")
    array([[2. , 2.5, 4.5],
           [3.5, 4. , 5.5],
           [3.5, 4. , 6. ]])
    """
    return quantile_pool2d(x, size, stride, padding, dilation, ceil_mode, q=0.5, padding_mode=padding_mode)


# ----------------------------------------------------------------------------- mixed


def mixed_pool2d(
    x: Any,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    *,
    alpha: float = 0.5,
    padding_mode: str = "default",
) -> np.ndarray:
    """Mixed pooling: ``alpha * max + (1 - alpha) * avg``.

    Both parts are :func:`poolcli.pooling.pool2d`'s (PyTorch semantics: max
    pads with -inf; avg counts padding per ``count_include_pad``, never for
    'same'). ``alpha=1`` returns the max and ``alpha=0`` the average exactly
    (Yu et al. 2014, "Mixed pooling for convolutional neural networks", with a
    fixed mixing weight).

    Parameters
    ----------
    alpha : float in [0, 1], keyword-only
    padding_mode : {'default', 'circular'}, keyword-only

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1., 3.], [2., 6.]])
    >>> mixed_pool2d(x, 2, alpha=0.25)  # 0.25 * 6 + 0.75 * 3
    array([[3.75]])
    """
    if check_padding_mode(padding_mode):
        return _circular(mixed_pool2d, x, size, stride, padding, dilation, ceil_mode, count_include_pad=True,
                         alpha=alpha)
    alpha = unit_number(alpha, "alpha")
    a = as_float_array(x)
    geo = (size, stride, padding, dilation, ceil_mode)
    if alpha == 1:
        return max_pool2d(a, *geo)
    avg = avg_pool2d(a, *geo, count_include_pad)
    if alpha == 0:
        return avg
    mx = max_pool2d(a, *geo)
    t = a.dtype.type
    return t(alpha) * mx + t(1.0 - alpha) * avg


# ----------------------------------------------------------------------------- SoftPool


def softpool2d(
    x: Any,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    *,
    padding_mode: str = "default",
) -> np.ndarray:
    """SoftPool (Stergiou, Poppe & Kalliatakis 2021): a softmax-weighted sum of each window.

    ``w_i = exp(a_i) / sum_j exp(a_j)`` over the window's input taps (padded
    taps are excluded), ``out = sum_i w_i * a_i``. Computed as
    ``exp(a_i - m)`` with ``m`` the window max, so large activations (1e4)
    do not overflow. The output lies between the window's mean and max. NaN
    propagates; a window holding +inf gives +inf, one of nothing but -inf
    gives -inf.

    Examples
    --------
    >>> import numpy as np
    >>> softpool2d(np.array([[0., 0.], [0., 1e4]]), 2)
    array([[10000.]])
    >>> softpool2d(np.array([[0., np.log(3.0)]]), (1, 2)).round(6)
    array([[0.823959]])
    """
    if check_padding_mode(padding_mode):
        return _circular(softpool2d, x, size, stride, padding, dilation, ceil_mode)
    planes, lead = as_planes(x)
    g = pool_geometry(planes.shape[1:], size, stride, padding, dilation, ceil_mode)
    xp = pad_planes(planes, g, -np.inf)
    m = None
    for _, _, v in window_taps(xp, g):
        m = v.copy() if m is None else np.maximum(m, v, out=m)
    num = np.zeros_like(m)
    den = np.zeros_like(m)
    with np.errstate(invalid="ignore", over="ignore"):
        for _, _, v in window_taps(xp, g):
            e = np.exp(v - m)  # padded -inf taps: exactly 0
            den += e
            num += np.where(e > 0, e * v, 0)
        out = num / den
    out[m == np.inf] = np.inf
    out[m == -np.inf] = -np.inf
    out[:, real_counts(g, planes.shape[1:]) == 0] = np.nan
    return restore_planes(out, lead)


# ----------------------------------------------------------------------------- stochastic


def _check_nonnegative(planes: np.ndarray) -> None:
    if planes.size and not np.isnan(planes).all():
        mn = np.nanmin(planes)
        if mn < 0:
            raise ValueError(
                f"stochastic pooling needs non-negative inputs (e.g. after relu); got min {float(mn):.6g}"
            )


def stochastic_pool2d(
    x: Any,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    *,
    train: bool = False,
    seed: Any = None,
    padding_mode: str = "default",
) -> np.ndarray:
    """Stochastic pooling (Zeiler & Fergus 2013).

    Over each window's input taps ``a_i >= 0``, ``p_i = a_i / sum_j a_j``.

    * Inference (``train=False``, the default): the probability-weighted
      average ``sum_i p_i * a_i = sum(a**2) / sum(a)``.
    * ``train=True``: one tap drawn per window with probabilities ``p_i``,
      from ``numpy.random.defaultmake_rng(seed)``: one uniform ``u`` per window
      (planes and windows in C order), the first tap in row-major window order
      whose running sum exceeds ``u * sum(a)``. The same seed gives the same
      output; the output is always one of the window's values.

    A window of zeros gives 0 (padding adds zeros and is never drawn); NaN
    propagates; a window holding +inf gives +inf.

    Raises
    ------
    ValueError
        For negative inputs (the probabilities need ``a >= 0``): apply a relu
        first. Also for a ``seed`` that is not None, an int >= 0 or a Generator.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1., 3.], [0., 0.]])
    >>> stochastic_pool2d(x, 2)
    array([[2.5]])
    >>> float(stochastic_pool2d(x, 2, train=True, seed=0)[0, 0]) in (1.0, 3.0)
    True
    >>> stochastic_pool2d(x - 0.5, 2)
    Traceback (most recent call last):
    ...
    ValueError: stochastic pooling needs non-negative inputs (e.g. after relu); got min -0.5
    """
    if check_padding_mode(padding_mode):
        return _circular(stochastic_pool2d, x, size, stride, padding, dilation, ceil_mode, train=train, seed=seed)
    planes, lead = as_planes(x)
    g = pool_geometry(planes.shape[1:], size, stride, padding, dilation, ceil_mode)
    rng = make_rng(seed)  # validated in both modes
    _check_nonnegative(planes)
    xp = pad_planes(planes, g, 0.0)
    s1 = np.zeros((planes.shape[0],) + g.out, dtype=planes.dtype)
    s2 = np.zeros_like(s1) if not train else None
    for _, _, v in window_taps(xp, g):
        s1 += v
        if not train:
            s2 += v * v
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if not train:
            out = np.where(s1 > 0, s2 / np.where(s1 > 0, s1, 1), 0).astype(planes.dtype)
        else:
            thr = rng.random(s1.shape) * s1  # float64
            run = np.zeros_like(s1)
            out = np.zeros_like(s1)
            done = np.zeros(s1.shape, dtype=bool)
            for _, _, v in window_taps(xp, g):
                run += v
                pick = ~done & (run > thr)
                out[pick] = v[pick]
                done |= pick
    out[np.isnan(s1)] = np.nan
    if np.isinf(planes).any():
        out[np.isposinf(s1)] = np.inf
    return restore_planes(out, lead)


# ----------------------------------------------------------------------------- GeM


def gem_pool2d(
    x: Any,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    *,
    p: float = 3.0,
    eps: float = 1e-6,
    padding_mode: str = "default",
) -> np.ndarray:
    """Generalised-mean (GeM) pooling (Radenovic, Tolias & Chum 2018).

    ``out = (mean_i clamp(a_i, min=eps) ** p) ** (1 / p)`` over each window's
    input taps (padded taps never count). The clamp at ``eps=1e-6`` is the
    reference implementation's (filipradenovic/cnnimageretrieval-pytorch
    ``gem``: ``x.clamp(min=eps).pow(p)``), so negative inputs count as
    ``eps``. ``p=1`` is the average of the clamped values; ``p -> inf``
    approaches the max. Computed as ``m * (mean((a / m) ** p)) ** (1 / p)``
    with ``m`` the window max, so large ``p`` does not overflow (equal to
    the direct formula up to rounding). NaN propagates.

    Parameters
    ----------
    p : float > 0, keyword-only
        The exponent (3 in the paper's initialisation).
    eps : float > 0, keyword-only

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1., 2.], [3., 4.]])
    >>> gem_pool2d(x, 2, p=1.0)
    array([[2.5]])
    >>> gem_pool2d(x, 2, p=2.0).round(6)
    array([[2.738613]])
    """
    if check_padding_mode(padding_mode):
        return _circular(gem_pool2d, x, size, stride, padding, dilation, ceil_mode, p=p, eps=eps)
    p = positive_number(p, "p")
    eps = positive_number(eps, "eps")
    planes, lead = as_planes(x)
    g = pool_geometry(planes.shape[1:], size, stride, padding, dilation, ceil_mode)
    t = planes.dtype.type
    clamped = np.maximum(planes, t(eps))
    xp = pad_planes(clamped, g, 0.0)
    m = None
    for _, _, v in window_taps(xp, g):
        m = v.copy() if m is None else np.maximum(m, v, out=m)
    acc = np.zeros_like(m)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        for _, _, v in window_taps(xp, g):
            acc += np.power(v / m, t(p))
        counts = real_counts(g, planes.shape[1:])
        out = m * np.power(acc / np.maximum(counts, 1).astype(planes.dtype), t(1.0 / p))
    out[m == np.inf] = np.inf
    out[:, counts == 0] = np.nan
    return restore_planes(out, lead)


# ----------------------------------------------------------------------------- dispatcher


def family_pool2d(
    x: Any,
    mode: str,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    *,
    q: float | None = None,
    alpha: float | None = None,
    p: float | None = None,
    train: bool = False,
    seed: Any = None,
    padding_mode: str = "default",
) -> np.ndarray:
    """One entry for the sliding-window family modes, for :func:`pool2d` to delegate to.

    ``mode`` is one of ``median``, ``quantile`` (needs ``q``), ``mixed``
    (``alpha``, default 0.5; uses ``count_include_pad``), ``softpool``,
    ``stochastic`` (``train``, ``seed``) and ``gem`` (``p``, default 3).

    >>> import numpy as np
    >>> family_pool2d(np.arange(4.0).reshape(2, 2), "gem", 2, p=1.0)
    array([[1.5]])
    """
    mode = str(mode).lower()
    geo = dict(size=size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
               padding_mode=padding_mode)
    if mode == "median":
        return median_pool2d(x, **geo)
    if mode == "quantile":
        if q is None:
            raise ValueError("q (the quantile, in [0, 1]) is required for mode='quantile', got None")
        return quantile_pool2d(x, **geo, q=q)
    if mode == "mixed":
        return mixed_pool2d(x, **geo, count_include_pad=count_include_pad, alpha=0.5 if alpha is None else alpha)
    if mode == "softpool":
        return softpool2d(x, **geo)
    if mode == "stochastic":
        return stochastic_pool2d(x, **geo, train=train, seed=seed)
    if mode == "gem":
        return gem_pool2d(x, **geo, p=3.0 if p is None else p)
    raise ValueError(f"mode must be one of {', '.join(FAMILY_MODES)}, got {mode!r}")


# ----------------------------------------------------------------------------- fractional


def fractional_sequence(n_in: int, n_out: int, *, pseudo_random: bool = True, seed: Any = None) -> np.ndarray:
    """TensorFlow's fractional pooling region boundaries along one axis.

    Returns ``n_out + 1`` ints ``b`` with ``b[0] = 0``, ``b[-1] = n_in`` and
    every step ``b[i+1] - b[i]`` equal to ``K = n_in // n_out`` or ``K + 1``
    (tensorflow/core/kernels/fractional_pool_common.cc, Graham 2014):

    * ``pseudo_random=True``: ``b[i] = ceil(alpha * (i + u)) - 1`` for
      ``0 < i < n_out``, ``alpha = n_in / n_out``, ``u`` uniform in
      ``[0, u_max)``, ``u_max = min((K + 2) / alpha - 1, (n_in + 1 - K) / alpha - (n_out - 1))``;
    * ``pseudo_random=False``: the steps are ``n_in % n_out`` times ``K + 1``
      and the rest ``K``, randomly permuted.

    When ``n_out`` divides ``n_in`` every step is ``K``. Randomness comes from
    ``numpy.random.defaultmake_rng(seed)`` (not TensorFlow's Philox stream).

    >>> fractional_sequence(10, 4, seed=0)
    array([ 0,  3,  5,  8, 10])
    >>> fractional_sequence(9, 3, pseudo_random=False, seed=0)
    array([0, 3, 6, 9])
    """
    if not is_int(n_in) or not is_int(n_out) or not 1 <= n_out <= n_in:
        raise ValueError(f"need ints 1 <= n_out <= n_in, got n_in={n_in!r}, n_out={n_out!r}")
    rng = make_rng(seed)
    k = n_in // n_out
    if n_in % n_out == 0:
        diff = np.full(n_out, k, dtype=np.int64)
    elif pseudo_random:
        alpha = n_in / n_out
        u_max = min((k + 2) / alpha - 1, (n_in + 1 - k) / alpha - (n_out - 1))
        u = rng.random() * u_max
        cum = np.empty(n_out + 1, dtype=np.int64)
        cum[0] = 1
        cum[n_out] = n_in + 1
        cum[1:n_out] = np.ceil(alpha * (np.arange(1, n_out) + u)).astype(np.int64)
        diff = np.diff(cum)
    else:
        diff = np.full(n_out, k, dtype=np.int64)
        diff[: n_in % n_out] += 1
        diff = rng.permutation(diff)
    return np.concatenate([[0], np.cumsum(diff)]).astype(np.int64)


def _torch_starts(samples: np.ndarray, n_in: int, n_out: int, k: int) -> np.ndarray:
    """PyTorch's ``generate_intervals``, per plane, in the samples' dtype. (P,) -> (P, n_out)."""
    t = samples.dtype.type
    seq = np.empty((samples.shape[0], n_out), dtype=np.int64)
    if n_out > 1:
        alpha = t(n_in - k) / t(n_out - 1)
        i = np.arange(n_out - 1).astype(samples.dtype)
        # C++ static_cast<int> truncates; every product here is >= 0, so astype (truncation) is floor.
        first = ((i[None, :] + samples[:, None]) * alpha).astype(np.int64)
        seq[:, :-1] = first - (samples * alpha).astype(np.int64)[:, None]
    seq[:, -1] = n_in - k
    return seq


def _max_windows(planes, rs, rl, cs, cl):
    """Max (and PyTorch-style indices) over windows with starts/lengths per axis.

    ``rs, rl``: (P or 1, OH) row starts and lengths; ``cs, cl``: (P or 1, OW).
    Taps row-major; ``val > best or isnan(val)`` replaces; the index starts at
    the window's first tap (as PyTorch's fractional kernel).
    """
    p, h, w = planes.shape
    rs, rl = rs[:, :, None], rl[:, :, None]
    cs, cl = cs[:, None, :], cl[:, None, :]
    pidx = np.arange(p)[:, None, None]
    shape = (p, rs.shape[1], cs.shape[2])
    best = np.full(shape, -np.inf, dtype=planes.dtype)
    idx = np.broadcast_to(rs * w + cs, shape).copy()
    for i in range(int(rl.max())):
        r = np.minimum(rs + i, h - 1)
        for j in range(int(cl.max())):
            c = np.minimum(cs + j, w - 1)
            v = planes[pidx, r, c]
            upd = ((v > best) | np.isnan(v)) & (i < rl) & (j < cl)
            np.copyto(best, v, where=upd)
            np.copyto(idx, np.broadcast_to(r * w + c, shape), where=upd)
    return best, idx


def _plane_samples(samples: Any, lead: tuple[int, ...], n_planes: int, dtype) -> np.ndarray:
    """Samples as (P, 2) in x's dtype: (N', C, 2) with N' >= N as PyTorch, (P, 2), or (2,) for every plane."""
    s = np.asarray(samples)
    if s.dtype.kind not in "fiu":
        raise ValueError(f"samples must be a float array, got dtype {s.dtype}")
    s = s.astype(dtype)
    n, c = (1, 1) if len(lead) == 0 else ((1, lead[0]) if len(lead) == 1 else lead)
    if s.shape == (2,):
        s = np.broadcast_to(s, (n_planes, 2))
    elif s.ndim == 2 and s.shape == (n_planes, 2):
        pass
    elif s.ndim == 3 and s.shape[0] >= n and s.shape[1] == c and s.shape[2] == 2:
        s = s[:n].reshape(n_planes, 2)
    else:
        raise ValueError(
            f"samples must have shape (N, C, 2) = {(n, c, 2)} (PyTorch's _random_samples; extra rows "
            f"are ignored), ({n_planes}, 2) or (2,), got shape {s.shape}"
        )
    if not np.all((s >= 0) & (s < 1)):
        raise ValueError(f"samples must lie in [0, 1), got values from {float(np.min(s))} to {float(np.max(s))}")
    return np.ascontiguousarray(s)


def fractional_max_pool2d(
    x: Any,
    size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    samples: Any = None,
    seed: Any = None,
    overlapping: bool = False,
    pseudo_random: bool = True,
    return_indices: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Fractional max pooling (Graham 2014): output sizes that are not input / integer.

    Two rules for where the windows go:

    * **PyTorch's** (``samples`` given): ``F.fractional_max_pool2d(x, size,
      output_size, _random_samples=samples)`` bit for bit. Per plane and axis,
      with its sample ``u`` (``samples[..., 0]`` for W, ``[..., 1]`` for H),
      ``alpha = (n_in - size) / (n_out - 1)`` and window ``i`` of ``size``
      taps starts at ``floor((i + u) * alpha) - floor(u * alpha)``, the last at
      ``n_in - size``, computed in x's dtype as PyTorch does. Needs
      ``n_out + size - 1 <= n_in``.
    * **TensorFlow's** (``samples=None``, the default): the regions of
      :func:`fractional_sequence` (``tf.nn.fractional_max_pool``): boundaries
      from 0 to the input size, each step ``K = n_in // n_out`` or ``K + 1``,
      ``pseudo_random`` or random, drawn from ``numpy.random.defaultmake_rng(seed)``
      (rows first, then columns), one sequence per axis shared by all planes.
      Window ``i`` is rows ``b[i] .. b[i+1] - 1``; ``overlapping=True`` adds row
      ``b[i+1]`` (clipped to the input), as TensorFlow. ``size`` is not used:
      the windows are the regions.

    Parameters
    ----------
    x : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
    size : int or (int, int), or None
        PyTorch's ``kernel_size``; required with ``samples``.
    output_size : int or (int, int), optional
    output_ratio : float or (float, float) in (0, 1], optional
        ``n_out = int(n_in * ratio)``, PyTorch's rule, for both rules
        (TensorFlow's ``pooling_ratio`` is ``1 / output_ratio``, with
        ``n_out = floor(n_in / pooling_ratio)``). Give exactly one of
        ``output_size`` and ``output_ratio``.
    samples : array_like, optional
        Shape (N, C, 2) like PyTorch's ``_random_samples`` (N = 1 for (C, H, W)
        and (H, W) inputs; extra rows ignored), or (P, 2) for the P planes, or
        (2,) for every plane; values in [0, 1), cast to x's dtype.
    seed : None, int >= 0 or numpy.random.Generator
        TensorFlow rule only.
    overlapping, pseudo_random : bool
        TensorFlow rule only.
    return_indices : bool
        Also return the flat ``ih * W + iw`` index of each maximum (int64;
        PyTorch's convention: first maximum in row-major order, NaN wins).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(25.0).reshape(5, 5)
    >>> fractional_max_pool2d(x, 2, output_size=3, samples=[0.5, 0.5])
    array([[ 6.,  8.,  9.],
           [16., 18., 19.],
           [21., 23., 24.]])
    >>> fractional_max_pool2d(x, None, output_ratio=0.5, seed=0).shape
    (2, 2)
    """
    planes, lead = as_planes(x)
    h, w = planes.shape[1:]
    if (output_size is None) == (output_ratio is None):
        raise ValueError(
            f"give exactly one of output_size and output_ratio, got output_size={output_size!r}, "
            f"output_ratio={output_ratio!r}"
        )
    if output_size is not None:
        oh, ow = pair(output_size, "output_size")
    else:
        ratio = output_ratio if isinstance(output_ratio, (tuple, list)) else (output_ratio, output_ratio)
        if len(ratio) != 2 or not all(
            not isinstance(r, bool) and isinstance(r, numbers.Real) and 0 < r <= 1 for r in ratio
        ):
            raise ValueError(f"output_ratio must be a number in (0, 1] or a pair of them, got {output_ratio!r}")
        oh, ow = int(h * float(ratio[0])), int(w * float(ratio[1]))
        if oh < 1 or ow < 1:
            raise ValueError(f"output_ratio={output_ratio!r} gives an empty output {(oh, ow)} for (H, W) = {(h, w)}")
    if oh > h or ow > w:
        raise ValueError(f"output_size {(oh, ow)} must not exceed the input (H, W) = {(h, w)}")
    if samples is not None:
        if size is None:
            raise ValueError("size (PyTorch's kernel_size) is required with samples, got None")
        kh, kw = pair(size, "size")
        if oh + kh - 1 > h or ow + kw - 1 > w:
            raise ValueError(
                f"size={size!r} is too large for output_size {(oh, ow)} and (H, W) = {(h, w)}: "
                "PyTorch needs output + size - 1 <= input"
            )
        s = _plane_samples(samples, lead, planes.shape[0], planes.dtype)
        rs = _torch_starts(s[:, 1], h, oh, kh)
        cs = _torch_starts(s[:, 0], w, ow, kw)
        rl = np.full((1, oh), kh)
        cl = np.full((1, ow), kw)
    else:
        rng = make_rng(seed)
        bh = fractional_sequence(h, oh, pseudo_random=bool(pseudo_random), seed=rng)
        bw = fractional_sequence(w, ow, pseudo_random=bool(pseudo_random), seed=rng)
        extra = 1 if overlapping else 0
        rs, cs = bh[None, :-1], bw[None, :-1]
        rl = np.minimum(bh[1:] + extra, h)[None, :] - rs
        cl = np.minimum(bw[1:] + extra, w)[None, :] - cs
    out, idx = _max_windows(planes, rs, rl, cs, cl)
    if return_indices:
        return restore_planes(out, lead), restore_planes(idx, lead)
    return restore_planes(out, lead)


# ----------------------------------------------------------------------------- learned


def load_weights(path: Any) -> np.ndarray:
    """Load learned-pooling weights from a ``.npy`` file: shape (k, k) or (C, k, k).

    Returns a float64 array (cast to the input's dtype when applied). The
    channel count is checked against the input by :func:`learned_pool2d`.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        For a file that is not a .npy array, a non-numeric or non-finite
        array, or the wrong number of dimensions.
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"weights file {str(path)!r} is not a readable .npy array: {e}") from None
    if not isinstance(arr, np.ndarray):
        if hasattr(arr, "close"):
            arr.close()
        raise ValueError(f"weights file {str(path)!r} must hold one array (.npy), got an archive (.npz)")
    return _check_weights(arr, f"weights in {str(path)!r}")


def _check_weights(weights: Any, name: str = "weights") -> np.ndarray:
    wts = np.asarray(weights)
    if wts.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {wts.dtype}")
    if wts.ndim not in (2, 3) or 0 in wts.shape:
        raise ValueError(f"{name} must have shape (k, k) or (C, k, k), got shape {wts.shape}")
    wts = wts.astype(np.float64)
    if not np.isfinite(wts).all():
        raise ValueError(f"{name} must be finite, got {int((~np.isfinite(wts)).sum())} non-finite values")
    return wts


def learned_pool2d(x: Any, weights: Any, stride: Any = None, padding: Any = 0) -> np.ndarray:
    """Learned pooling: a depthwise strided cross-correlation with given weights.

    ``out[c, i, j] = sum_{a, b} w[c, a, b] * xpad[c, i*sh + a, j*sw + b]``,
    no kernel flip (a CNN "convolution"), zero padding: equal to
    ``F.conv2d(x, w[:, None], stride=stride, padding=padding, groups=C)``
    (tested against it). The output size is :func:`poolcli.pooling.pool2d`'s
    for a window of the weights' size, with the same ``stride`` (default: the
    window size) and ``padding`` rules ('same', 'valid', per-side included).

    Parameters
    ----------
    x : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
    weights : array_like, shape (kh, kw) shared by all channels or (C, kh, kw)
        E.g. from :func:`load_weights`; cast to x's dtype.

    Raises
    ------
    ValueError
        For weights of the wrong shape, and for (C, kh, kw) weights whose C
        differs from the input's channel count (naming both).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> learned_pool2d(x, np.full((2, 2), 0.25))  # a 2x2 average
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    planes, lead = as_planes(x)
    wts = _check_weights(weights)
    channels = lead[-1] if lead else 1
    if wts.ndim == 3:
        if wts.shape[0] != channels:
            raise ValueError(
                f"weights have {wts.shape[0]} channels (shape {wts.shape}) but the input has C={channels} "
                f"(shape {np.shape(x)}); give (k, k) weights to share them or ({channels}, k, k)"
            )
        per_plane = np.tile(wts, (planes.shape[0] // channels, 1, 1))
    else:
        per_plane = np.broadcast_to(wts, (planes.shape[0],) + wts.shape)
    per_plane = per_plane.astype(planes.dtype)
    g = pool_geometry(planes.shape[1:], wts.shape[-2:], stride, padding, 1, False)
    xp = pad_planes(planes, g, 0.0)
    out = np.zeros((planes.shape[0],) + g.out, dtype=planes.dtype)
    for i, j, v in window_taps(xp, g):
        out += per_plane[:, i, j, None, None] * v
    return restore_planes(out, lead)


# ----------------------------------------------------------------------------- the mode table's entries


def stochastic_mode(
    x: Any,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    *,
    train: bool = False,
    seed: Any = 0,
    padding_mode: str = "default",
) -> np.ndarray:
    """The ``stochastic`` mode: :func:`stochastic_pool2d` with the stack language's default ``seed=0``."""
    return stochastic_pool2d(x, size, stride, padding, dilation, ceil_mode, train=train, seed=seed,
                             padding_mode=padding_mode)


def gem_mode(
    x: Any,
    size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    *,
    p: float = 3.0,
    padding_mode: str = "default",
) -> np.ndarray:
    """The ``gem`` mode: :func:`gem_pool2d` with its default ``eps`` (the mode has no ``eps`` parameter)."""
    return gem_pool2d(x, size, stride, padding, dilation, ceil_mode, p=p, padding_mode=padding_mode)


def fractional_mode(
    x: Any,
    size: Any = 2,
    *,
    output_size: Any = None,
    ratio: Any = None,
    seed: Any = 0,
    overlapping: bool = False,
    pseudo_random: bool = True,
) -> np.ndarray:
    """The ``fractional`` mode: :func:`fractional_max_pool2d` (TensorFlow's rule), ``ratio`` its ``output_ratio``."""
    return fractional_max_pool2d(x, size, output_size=output_size, output_ratio=ratio, seed=seed,
                                 overlapping=overlapping, pseudo_random=pseudo_random)


def learned_mode(x: Any, *, weights: Any, stride: Any = None, padding: Any = 0) -> np.ndarray:
    """The ``learned`` mode: :func:`learned_pool2d` with array weights ((k, k) or (C, k, k); no file I/O)."""
    return learned_pool2d(x, weights, stride, padding)
