"""Anti-aliased and adaptive-polyphase downsampling: BlurPool, MaxBlurPool and APS.

Knows: ONE blur (:func:`blur2d`), ONE BlurPool (max with stride 1, then the
blur) and ONE APS; the public functions (:func:`max_blur_pool2d`,
:func:`aps_pool2d`, ...) and the pooling modes ``blurpool``, ``blur`` and
``aps`` (:func:`blurpool_mode`, :func:`blur_mode`, :func:`aps_mode`, what
``pool2d``, the stack and ``poolcli run --pool`` call) run the same code.
Imports: numpy, :mod:`poolcli._checks`, :mod:`poolcli._bands`,
:mod:`poolcli.kernels`, :mod:`.geometry` and :mod:`.torch_ops` only.

Two remedies for the aliasing of strided pooling, as NumPy cores (arrays in,
arrays out; (H, W), (C, H, W) or (N, C, H, W); float32 and float64 are kept,
other real dtypes become float64):

* **BlurPool / MaxBlurPool** -- Zhang, *Making Convolutional Networks
  Shift-Invariant Again*, ICML 2019 (adobe/antialiased-cnns,
  ``antialiased_cnns/blurpool.py``). Low-pass filter with a normalised binomial
  before subsampling: :func:`blur2d` is ``BlurPool(C, pad_type='reflect',
  filt_size=m, stride=s)`` and :func:`max_blur_pool2d` is
  ``nn.Sequential(nn.MaxPool2d(k, stride=1), BlurPool(C, filt_size=m, stride=s))``.
* **APS** -- Chaman & Dokmanic, *Truly Shift-Invariant Convolutional Neural
  Networks*, CVPR 2021 (achaman2/truly_shift_invariant_cnns, ``ApsPool`` and
  ``aps_downsample_v2`` in ``apspool.py``). Keep the polyphase component with
  the largest l2 norm: :func:`aps_downsample` and its max-pool form
  :func:`aps_pool2d`.

Conventions (one place for all of them)
---------------------------------------
Blur padding (``blur2d``; the blur inside ``max_blur_pool2d`` and ``aps_pool2d``)
    ``floor((m - 1) / 2)`` before and ``ceil((m - 1) / 2)`` after, on each axis
    (top/bottom, left/right), as antialiased-cnns' ``pad_sizes``. Reflect is
    PyTorch's ``ReflectionPad2d`` = ``np.pad(mode='reflect')`` = scipy's
    ``'mirror'`` (``d c b | a b c d``, the edge not repeated). Like PyTorch it
    needs every pad to be smaller than the input side, else ``ValueError``.
    Circular wraps around (any size works: indices are taken modulo H).
Peers (``blur_pad``, ``pad_off``, ``peer``; tests/data/peer_*.npz, tests/test_peers.py)
    ``blur_pad`` is the pad mode: ``reflect`` (above; antialiased-cnns'
    default), ``replicate`` (``ReplicationPad2d``, its ``'repl'``), ``zero``
    (``ZeroPad2d``, its ``'zero'``; kornia's only one; timm's ``'constant'``)
    or ``circular``. ``pad_off`` is antialiased-cnns' ``pad_off``, added to
    the pad of every side. ``peer`` sets a layer's choices at once:
    ``antialiased-cnns`` (= ``none``, the default) reflect with the
    ``floor``/``ceil`` split; ``kornia`` (``BlurPool2D``, ``MaxBlurPool2D``)
    zeros with the same split; ``timm`` (``BlurPool2d``) reflect with
    ``((stride - 1) + (m - 1)) // 2`` on *both* sides of each axis (its
    ``get_padding``), so even sizes and stride 3 differ from antialiased-cnns.
    Precedence: ``circular=True`` / ``padding_mode='circular'`` wins over
    everything (wrapped, the ``floor``/``ceil`` split, ``pad_off`` ignored:
    exactly as before, so invariance measurements do not change); then an
    explicit ``blur_pad`` replaces the peer's pad *mode* (the peer still sets
    the pad sizes: ``peer='timm', blur_pad='zero'`` is timm's
    ``pad_mode='constant'``); ``pad_off`` adds to the peer's sizes.
Blur arithmetic
    Cross-correlation (no flip; the binomial is symmetric anyway), separable:
    one pass along H then one along W over the taps, with strided slices, in
    float64, rounded once to the input dtype. Each output pixel is computed by
    the same operations in the same order wherever it sits, so circular
    equivariance holds bit for bit.
Max stage (``max_blur_pool2d``, ``aps_pool2d``, the modes)
    Window ``size``, stride 1, :func:`.torch_ops.max_pool2d` (PyTorch's "first
    maximum wins"). Not circular: no padding (the ``blurpool`` mode: its
    ``padding`` and ``dilation``), ``H -> H - size + 1``
    (``nn.MaxPool2d(size, 1)``). Circular: wrap-pad ``size - 1`` rows/columns
    **after** the input (bottom/right) and none before, so the output keeps H
    and its first ``H - size + 1`` rows are exactly the non-circular ones; this
    is Chaman & Dokmanic's ``circular_pad([0, 1, 0, 1]) + nn.MaxPool2d(2, 1)``.
    NaN propagates, as in PyTorch.
Subsampling
    BlurPool keeps indices ``0, s, 2s, ...`` (``conv2d(stride=s)``), so
    ``OH = floor((H + m - 1 - m) / s) + 1 = ceil(H / s)``.
APS
    H (W) not a multiple of the stride is wrap-padded at the end (bottom/right)
    to the next multiple (for stride 2: odd sizes gain one row, ``aps_pad``).
    The ``sh * sw`` components ``x[..., i::sh, j::sw]`` are ordered row-major,
    index ``i * sw + j``. The criterion is the sum of squares over (C, H', W')
    per sample (per ``N`` for 4-D input, one sample for 2-D/3-D), computed in
    float64 from the squared values **sorted** before summation, so that a
    component's norm does not depend on where its values sit: a circular shift
    only permutes values within components and leaves the norms bit-identical.
    ``np.argmax`` compares exactly (no tolerance): ties go to the lowest index,
    e.g. (0, 0) for a constant input (``ties='first'``, the default). The
    reference orders the four stride-2 components (0,0), (1,0), (0,1), (1,1)
    and keeps the first of equal scores in that order: ``ties='official'``
    (columns first, for any stride); the two differ only on exact ties
    between (1, 0) and (0, 1). A NaN score wins, as in ``argmax``.
    ``criterion``: ``l2`` (above), ``l1`` (sum of ``|x|``, sorted, float64),
    ``linf`` (max ``|x|``), ``max`` (max ``x``), ``l2_min`` / ``l1_min``
    (the smallest norm); the official names ``l_infty`` and ``non_abs_max``
    are aliases. ``phase=`` applies a given choice instead (the official
    ``polyphase_indices``).

Exactness: ``blur2d(circular=True)`` and ``max_blur_pool2d(circular=True)``
commute exactly with circular shifts by multiples of the stride when H and W
are multiples of the stride (the output rolls by shift / stride).
``aps_pool2d`` (circular, sizes multiples of the stride) commutes with *every*
circular shift up to a circular shift of its output, barring exact ties
between component norms.

Tested against PyTorch: ``tests/data/golden_antialias.npz`` holds outputs of
BlurPool / MaxBlurPool (reflect and circular) and of ApsPool rebuilt from
antialiased-cnns' and truly_shift_invariant_cnns' code with torch ops
(``tests/data/make_antialias_golden.py``).

Examples
--------
>>> import numpy as np
>>> x = np.zeros((6, 6), np.float32); x[3, 3] = 16
>>> blur2d(x, stride=2, blur_size=3)  # the impulse is spread, not dropped
array([[0., 0., 0.],
       [0., 1., 1.],
       [0., 1., 1.]], dtype=float32)
>>> aps_downsample(np.arange(16.0).reshape(4, 4), return_phase=True)[1]
array([1, 1])
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._bands import accumulate, pad, run_bands
from .._checks import as_planes, pair, restore_planes
from ..kernels import BINOMIAL_TAPS
from .geometry import check_flag, check_padding_mode, keep_size_pads
from .torch_ops import max_pool2d

__all__ = [
    "BLUR_SIZES",
    "BLUR_PADS",
    "PEERS",
    "APS_CRITERIA",
    "APS_TIES",
    "blur_kernel",
    "blur2d",
    "max_blur_pool2d",
    "aps_downsample",
    "aps_pool2d",
    "blurpool_mode",
    "blur_mode",
    "aps_mode",
]

#: Valid binomial blur sizes (the ``filt_size`` of antialiased-cnns).
BLUR_SIZES = tuple(range(1, len(BINOMIAL_TAPS) + 1))
#: How the blur pads (PyTorch's ReflectionPad2d, ReplicationPad2d, ZeroPad2d, F.pad(mode='circular')).
BLUR_PADS = ("reflect", "replicate", "zero", "circular")
#: Peers whose anti-aliased layers a ``peer=`` reproduces (see "Peers" in the module docstring).
PEERS = ("none", "antialiased-cnns", "kornia", "timm")
#: APS criteria: the official ``apspool_criterion`` values are
#: ``l2, l1, l_infty, non_abs_max, l2_min, l1_min``.
APS_CRITERIA = ("l2", "l1", "linf", "max", "l2_min", "l1_min")
#: APS tie rules: ``first`` = lowest row-major index; ``official`` = the reference's order.
APS_TIES = ("first", "official")

_PAD_MODE = {"reflect": "mirror", "replicate": "nearest", "zero": "constant", "circular": "wrap"}
#: Per peer: (blur padding, pad sizes). 'split' = floor((m-1)/2) before, ceil after (antialiased-cnns,
#: kornia); 'timm' = ((stride-1) + (m-1)) // 2 on both sides (timm's get_padding).
_PEER_PAD = {
    "none": ("reflect", "split"),
    "antialiased-cnns": ("reflect", "split"),
    "kornia": ("zero", "split"),
    "timm": ("reflect", "timm"),
}


# ----------------------------------------------------------------------------- checks


def _blur_size(m: Any, name: str = "blur_size") -> int:
    if isinstance(m, bool) or not isinstance(m, numbers.Integral) or not BLUR_SIZES[0] <= m <= BLUR_SIZES[-1]:
        raise ValueError(f"{name} must be an int in {BLUR_SIZES[0]}..{BLUR_SIZES[-1]}, got {m!r}")
    return int(m)


def _taps(m: int) -> np.ndarray:
    t = BINOMIAL_TAPS[m - 1]
    return t / t.sum()


def _choice(value: Any, name: str, choices: tuple[str, ...], aliases: dict[str, str] | None = None) -> str:
    s = str(value).strip().lower().replace("_", "-") if isinstance(value, str) else None
    s = (aliases or {}).get(s, s) if s is not None else None
    canon = {c.replace("_", "-"): c for c in choices}
    if s not in canon:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return canon[s]


#: Other spellings: antialiased-cnns' ``refl``/``repl``, timm's and F.pad's ``constant``, scipy's names.
BLUR_PAD_ALIASES = {"refl": "reflect", "repl": "replicate", "constant": "zero", "zeros": "zero",
                    "wrap": "circular", "mirror": "reflect", "nearest": "replicate", "edge": "replicate"}
#: The official APS code's criterion names.
APS_CRITERION_ALIASES = {"l-infty": "linf", "l-inf": "linf", "non-abs-max": "max"}
PEER_ALIASES = {"antialiased-cnns": "antialiased-cnns", "antialiasedcnns": "antialiased-cnns",
                "adobe": "antialiased-cnns"}


@dataclass(frozen=True)
class _BlurPad:
    """How the blur pads: PyTorch's padding ``mode`` and the pad amounts (see "Peers")."""

    mode: str = "reflect"  # one of BLUR_PADS
    sizes: str = "split"  # 'split' (antialiased-cnns, kornia) | 'timm'
    off: int = 0  # antialiased-cnns' pad_off: added to every side

    def amounts(self, m: int, stride: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, left), (bottom, right)) pads."""
        if self.sizes == "timm":
            ph, pw = (((s - 1) + (m - 1)) // 2 + self.off for s in stride)
            return (ph, pw), (ph, pw)
        p0, p1 = (m - 1) // 2 + self.off, m // 2 + self.off
        return (p0, p0), (p1, p1)


_CIRCULAR = _BlurPad("circular")


def _blur_pad(circular: bool, blur_pad: Any = None, pad_off: Any = 0, peer: Any = None) -> _BlurPad:
    """The blur padding from the public keywords: circular wins, then an explicit blur_pad, then the peer's."""
    peer_ = "none" if peer is None else _choice(peer, "peer", PEERS, PEER_ALIASES)
    mode_ = None if blur_pad is None else _choice(blur_pad, "blur_pad", BLUR_PADS, BLUR_PAD_ALIASES)
    if isinstance(pad_off, bool) or not isinstance(pad_off, numbers.Integral) or not 0 <= pad_off <= 64:
        raise ValueError(f"pad_off must be an int in 0..64, got {pad_off!r}")
    if circular:  # padding_mode='circular': wrapped everywhere, as always (sizes and pad_off ignored)
        return _CIRCULAR
    default_mode, sizes = _PEER_PAD[peer_]
    return _BlurPad(mode_ or default_mode, sizes, int(pad_off))


# ----------------------------------------------------------------------------- pieces


def _check_blur_fits(h: int, w: int, m: int, before, after, bp: _BlurPad) -> tuple[int, int]:
    """The output size; ValueError where PyTorch raises (reflection pads too large, nothing left)."""
    if bp.mode == "reflect" and (max(before[0], after[0]) >= h or max(before[1], after[1]) >= w):
        where = (f"({before[0]}, {after[0]}) on each axis" if (before[0], after[0]) == (before[1], after[1])
                 else f"({before[0]}, {after[0]}) rows and ({before[1]}, {after[1]}) columns")
        raise ValueError(
            f"blur_size={m} pads {where}, and reflection padding (PyTorch's "
            f"ReflectionPad2d) needs every pad smaller than the input side; got (H, W) = {(h, w)} "
            f"(use circular=True, a smaller blur_size or a larger input)"
        )
    hp, wp = h + before[0] + after[0], w + before[1] + after[1]
    if hp < m or wp < m:
        raise ValueError(f"blur_size={m} is larger than the padded input {(hp, wp)}: no output")
    return hp, wp


def _blur_planes(a: np.ndarray, stride: tuple[int, int], m: int, bp: _BlurPad) -> np.ndarray:
    """BlurPool of (P, H, W) planes: pad, separable correlation, keep every stride-th."""
    _, h, w = a.shape
    sh, sw = stride
    before, after = bp.amounts(m, stride)
    if m == 1 and before == after == (0, 0):  # antialiased-cnns' identity path: x[:, :, ::s, ::s]
        return a[:, ::sh, ::sw].copy()
    hp, wp = _check_blur_fits(h, w, m, before, after, bp)
    # Reflect is PyTorch's ReflectionPad2d: scipy's (and _bands') 'mirror'.
    xp = pad(a, before, after, _PAD_MODE[bp.mode])
    if m == 1:  # antialiased-cnns with pad_off: pad, then subsample
        return xp[:, ::sh, ::sw].astype(a.dtype, copy=True)
    p = xp.shape[0]
    oh, ow = (hp - m) // sh + 1, (wp - m) // sw + 1
    taps = _taps(m)  # float64 scalars: every product and sum in float64 (the float32 input converted exactly)
    # The output's axes lie in memory in the padded input's order, as the whole-array ufuncs (order 'K') laid
    # them out (a circular pad is gathered with the columns outermost): float64 sums over the maps
    # downstream follow memory order, so the layout keeps every digest bit for bit.
    order = sorted(range(3), key=lambda i: -xp.strides[i])
    out = np.empty([(p, oh, ow)[i] for i in order], dtype=a.dtype).transpose(np.argsort(order))

    def work(p0: int, p1: int, r0: int, r1: int) -> None:
        # in bands of output rows, with per-thread buffers: the whole-array version made a float64 copy of
        # the padded input and a fresh map-sized temporary per tap (2048x2048: 86-95 -> 45 ms, measured)
        n = r1 - r0
        src = xp[p0:p1, r0 * sh : (r1 - 1) * sh + m]
        rows = cols = None
        for k, t in enumerate(taps):  # along H, only the rows that are kept
            rows = accumulate(rows, src[:, k : k + (n - 1) * sh + 1 : sh, :], t, (p1 - p0, n, wp), np.float64,
                              "blur-rows", tmp="blur-tmp")
        for k, t in enumerate(taps):  # along W
            cols = accumulate(cols, rows[:, :, k : k + (ow - 1) * sw + 1 : sw], t, (p1 - p0, n, ow), np.float64,
                              "blur-cols", tmp="blur-tmp")
        out[p0:p1, r0:r1] = cols  # to the input's dtype, rounded once

    run_bands(work, p, oh, wp * 8 * sh, xp.size)
    return out


def _max_stage(a: np.ndarray, size: tuple[int, int], padding: Any, dilation: Any, circular: bool) -> np.ndarray:
    """Max over ``size`` windows with stride 1 (see the module docstring for padding); size 1 skips it."""
    if size == (1, 1):
        return a
    if circular:  # wrapped to keep the size, so that it commutes with shifts
        return max_pool2d(a, size, 1, keep_size_pads(size, dilation), dilation, padding_mode="circular")
    return max_pool2d(a, size, 1, padding, dilation)


def _check_fits(a: np.ndarray, size: tuple[int, int], circular: bool) -> None:
    """The public functions' own message for a max window larger than the (unpadded) input."""
    _, h, w = a.shape
    if not circular and (size[0] > h or size[1] > w):
        raise ValueError(
            f"size={size!r} is larger than the input (H, W) = {(h, w)}: the max stage "
            f"(nn.MaxPool2d(size, stride=1), no padding) would have no output; use circular=True"
        )


def _blurpool(a: np.ndarray, size, stride, padding, dilation, m: int, circular: bool, bp: _BlurPad) -> np.ndarray:
    """MaxBlurPool of (P, H, W) planes: the max stage, then BlurPool."""
    return _blur_planes(_max_stage(a, size, padding, dilation, circular), stride, m, bp)


@dataclass(frozen=True)
class _ApsRule:
    """How APS chooses: the criterion, the tie order, or a given phase (then neither counts)."""

    criterion: str = "l2"
    ties: str = "first"
    phase: Any = None  # None, or (n, 2) int64 phases to apply


def _aps_rule(criterion: Any = "l2", ties: Any = "first", phase: Any = None) -> _ApsRule:
    crit = _choice(criterion, "criterion", APS_CRITERIA, APS_CRITERION_ALIASES)
    tie = _choice(ties, "ties", APS_TIES)
    if phase is not None:
        ph = np.asarray(phase)
        if ph.dtype.kind not in "iu" or ph.ndim not in (1, 2) or ph.shape[-1] != 2:
            raise ValueError(f"phase must be ints (i, j) or an (N, 2) array of them, got {phase!r}")
        phase = ph.reshape(-1, 2).astype(np.int64)
    return _ApsRule(crit, tie, phase)


def _aps_pool(a: np.ndarray, lead, size, stride, m: int, circular: bool, bp: _BlurPad,
              rule: _ApsRule = _ApsRule()) -> tuple[np.ndarray, np.ndarray]:
    """Max (stride 1) -> optional blur (stride 1) -> APS of (P, H, W) planes; (out, phases)."""
    y = _max_stage(a, size, 0, 1, circular)
    if m > 1:  # as ApsPool: filt_size 1 neither blurs nor pads
        y = _blur_planes(y, (1, 1), m, bp)
    return _aps_planes(y, lead, stride, True, rule)


def _aps_scores(comps: np.ndarray, criterion: str) -> np.ndarray:
    """(n, K) scores of the components; sums in float64 over sorted terms (independent of position)."""
    if criterion in ("linf", "max"):
        vals = np.abs(comps) if criterion == "linf" else comps
        return vals.max(axis=-1)
    terms = np.square(comps, dtype=np.float64) if criterion.startswith("l2") else np.abs(comps).astype(np.float64)
    terms.sort(axis=-1)  # the sum no longer depends on where the values sit
    return terms.sum(axis=-1)


def _aps_choose(comps: np.ndarray, stride: tuple[int, int], rule: _ApsRule) -> np.ndarray:
    """The chosen component index ``i * sw + j`` per sample."""
    sh, sw = stride
    n = comps.shape[0]
    if rule.phase is not None:
        ph = rule.phase
        if ph.shape[0] not in (1, n) or (ph < 0).any() or (ph[:, 0] >= sh).any() or (ph[:, 1] >= sw).any():
            raise ValueError(f"phase must be {n} or 1 pair(s) (i, j) with 0 <= i < {sh}, 0 <= j < {sw}, "
                             f"got {ph.tolist()!r}")
        return np.broadcast_to(ph[:, 0] * sw + ph[:, 1], (n,)).copy()
    score = _aps_scores(comps, rule.criterion)
    # The official code orders the components (0,0), (1,0), (0,1), ... (columns first) and
    # its argmax / argmin keeps the first of equal scores in that order.
    order = np.arange(sh * sw) if rule.ties == "first" else np.array([i * sw + j for j in range(sw) for i in range(sh)])
    pick = np.argmin if rule.criterion.endswith("_min") else np.argmax
    return order[pick(score[:, order], axis=1)]


def _aps_planes(
    a: np.ndarray, lead: tuple[int, ...], stride: tuple[int, int], pad_odd: bool, rule: _ApsRule = _ApsRule()
) -> tuple[np.ndarray, np.ndarray]:
    """APS of (P, H, W) planes; returns (P, OH, OW) and the (n, 2) phases."""
    p, h, w = a.shape
    sh, sw = stride
    if h % sh or w % sw:
        if not pad_odd:
            raise ValueError(
                f"(H, W) = {(h, w)} is not a multiple of stride={stride!r}; pass "
                f"circular_pad_odd=True to wrap-pad it at the bottom/right"
            )
        a = pad(a, (0, 0), ((-h) % sh, (-w) % sw), "wrap")
    hp, wp = a.shape[1:]
    oh, ow = hp // sh, wp // sw
    n = lead[0] if len(lead) == 2 else 1
    c = p // n
    # comps[n, i * sw + j] = x[n, :, i::sh, j::sw], flattened over (C, OH, OW)
    comps = a.reshape(n, c, oh, sh, ow, sw).transpose(0, 3, 5, 1, 2, 4).reshape(n, sh * sw, c * oh * ow)
    idx = _aps_choose(comps, stride, rule)
    out = comps[np.arange(n), idx].reshape(p, oh, ow)
    phase = np.stack([idx // sw, idx % sw], axis=1).astype(np.int64)
    return out, phase


def _phase_out(phase: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    return phase if len(lead) == 2 else phase[0]


# ----------------------------------------------------------------------------- public


def blur_kernel(m: int) -> np.ndarray:
    """The normalised 2-D binomial blur of size ``m`` (antialiased-cnns' filter).

    ``outer(a, a) / sum`` with ``a`` the Pascal row of length ``m``: ``[1]``,
    ``[1, 1]``, ``[1, 2, 1]``, ``[1, 3, 3, 1]``, ``[1, 4, 6, 4, 1]``,
    ``[1, 5, 10, 10, 5, 1]``, ``[1, 6, 15, 20, 15, 6, 1]``. Every entry is a
    dyadic fraction, so the kernel is exact in float32 and float64 alike.

    Parameters
    ----------
    m : int
        Filter size, 1..7.

    Returns
    -------
    ndarray, shape (m, m), float64
        Sums to 1 (a fresh, writable array).

    Raises
    ------
    ValueError
        If ``m`` is not an int in 1..7.

    Examples
    --------
    >>> blur_kernel(3) * 16
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> float(blur_kernel(7).sum())
    1.0
    >>> blur_kernel(8)
    Traceback (most recent call last):
    ...
    ValueError: m must be an int in 1..7, got 8
    """
    a = BINOMIAL_TAPS[_blur_size(m, "m") - 1]
    k = np.multiply.outer(a, a)
    return k / k.sum()


def blur2d(
    x: Any, stride: Any = 2, blur_size: int = 3, *, circular: bool = False, blur_pad: str | None = None,
    pad_off: int = 0, peer: str | None = None,
) -> np.ndarray:
    """BlurPool: pad, depthwise binomial blur, subsample (Zhang 2019).

    Equals antialiased-cnns' ``BlurPool(C, pad_type='reflect', filt_size=blur_size,
    stride=stride)``: ``ReflectionPad2d([p0, p1, p0, p1])`` with
    ``p0 = floor((m - 1) / 2)``, ``p1 = ceil((m - 1) / 2)``, then
    ``F.conv2d(weight=blur_kernel(m), stride=stride, groups=C)``; for ``m = 1``
    simply ``x[..., ::sh, ::sw]``. Tested against that PyTorch composition
    (``tests/data/golden_antialias.npz``).

    Parameters
    ----------
    x : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
        float32 and float64 are kept; other real dtypes become float64.
    stride : int or (int, int), optional
        Subsampling factor; rows/columns ``0, s, 2s, ...`` are kept.
    blur_size : int, optional
        Binomial filter size ``m``, 1..7 (see :func:`blur_kernel`).
    circular : bool, keyword-only
        Wrap-pad instead of reflect (same split ``p0`` before, ``p1`` after).
        The result then commutes exactly with circular shifts by multiples of
        the stride when H and W are multiples of it.
    blur_pad : {'reflect', 'replicate', 'zero', 'circular'}, keyword-only
        How the blur pads when not ``circular``: PyTorch's ``ReflectionPad2d``
        (the default, antialiased-cnns'), ``ReplicationPad2d``, ``ZeroPad2d``
        (kornia) or ``F.pad(mode='circular')``. None: the ``peer``'s choice.
        Aliases: ``refl``, ``repl``, ``constant``, ``wrap``.
    pad_off : int, keyword-only
        antialiased-cnns' ``pad_off``: added to the pad of every side (with
        ``pad_off=1`` a 4x4 input gives 3x3 at stride 2).
    peer : {'none', 'antialiased-cnns', 'kornia', 'timm'}, keyword-only
        Set the padding as that peer's layer does (see "Peers" in the module
        docstring); an explicit ``blur_pad`` wins over the peer's, ``pad_off``
        adds to its sizes, and ``circular=True`` wins over all of them.

    Returns
    -------
    ndarray, shape (..., OH, OW), dtype of ``x``
        ``OH = floor((H + p0 + p1 - m) / sh) + 1 = ceil(H / sh)``; likewise OW
        (with ``pad_off`` or timm's pads, ``p0`` and ``p1`` are those pads).

    Raises
    ------
    ValueError
        For a bad ``stride`` or ``blur_size``, and (reflect only, as PyTorch)
        when ``p1 >= H`` or ``p1 >= W``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(25, dtype=np.float32).reshape(5, 5)
    >>> blur2d(x, stride=2, blur_size=3)
    array([[ 3. ,  4.5,  6. ],
           [10.5, 12. , 13.5],
           [18. , 19.5, 21. ]], dtype=float32)
    >>> blur2d(x, stride=(1, 2), blur_size=1).shape
    (5, 3)
    >>> blur2d(np.ones((2, 2)), blur_size=5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: blur_size=5 pads (2, 2) on each axis, ...
    """
    stride_ = pair(stride, "stride")
    m = _blur_size(blur_size)
    bp = _blur_pad(check_flag(circular, "circular"), blur_pad, pad_off, peer)
    planes, lead = as_planes(x)
    return restore_planes(_blur_planes(planes, stride_, m, bp), lead)


def max_blur_pool2d(
    x: Any, size: Any = 2, stride: Any = 2, blur_size: int = 3, *, circular: bool = False,
    blur_pad: str | None = None, pad_off: int = 0, peer: str | None = None,
) -> np.ndarray:
    """MaxBlurPool: max with stride 1, then BlurPool (Zhang 2019).

    Equals antialiased-cnns' ``nn.Sequential(nn.MaxPool2d(kernel_size=size,
    stride=1), BlurPool(C, filt_size=blur_size, stride=stride))`` (the
    replacement for ``nn.MaxPool2d(size, stride)``), tested against that
    PyTorch composition (``tests/data/golden_antialias.npz``).

    Parameters
    ----------
    x : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
    size : int or (int, int), optional
        Max window.
    stride : int or (int, int), optional
        Stride of the blur-and-subsample stage.
    blur_size : int, optional
        Binomial filter size, 1..7.
    circular : bool, keyword-only
        Wrap everywhere: the max stage pads ``size - 1`` wrapped rows/columns
        at the bottom/right (none before; Chaman & Dokmanic's
        ``circular_pad([0, 1, 0, 1])`` for size 2) and keeps H; the blur wraps
        too. The result then commutes exactly with circular shifts by
        multiples of the stride when H and W are multiples of it.
    blur_pad, pad_off, peer : keyword-only
        The blur's padding, as :func:`blur2d`: ``peer='kornia'`` is kornia's
        ``MaxBlurPool2D(m, stride, max_pool_size=size)``.

    Returns
    -------
    ndarray, dtype of ``x``
        Not circular: ``OH = ceil((H - size + 1) / stride)``; circular:
        ``OH = ceil(H / stride)``; likewise OW.

    Raises
    ------
    ValueError
        For a bad ``size``, ``stride`` or ``blur_size``; when (not circular)
        the window is larger than the input, or the max output is too small
        for reflection padding.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((1, 6, 6)); x[0, 2, 2] = 16
    >>> max_blur_pool2d(x, 2, 2, 3, circular=True)
    array([[[1., 3., 0.],
            [3., 9., 0.],
            [0., 0., 0.]]])
    >>> max_blur_pool2d(np.ones((7, 8), np.float32)).shape
    (3, 4)
    >>> max_blur_pool2d(np.ones((4, 4)), size=0)
    Traceback (most recent call last):
    ...
    ValueError: size must be an int >= 1 or a pair of them, got 0
    """
    size_ = pair(size, "size")
    stride_ = pair(stride, "stride")
    m = _blur_size(blur_size)
    circ = check_flag(circular, "circular")
    bp = _blur_pad(circ, blur_pad, pad_off, peer)
    planes, lead = as_planes(x)
    _check_fits(planes, size_, circ)
    return restore_planes(_blurpool(planes, size_, stride_, 0, 1, m, circ, bp), lead)


def aps_downsample(
    x: Any, stride: Any = 2, *, circular_pad_odd: bool = True, return_phase: bool = False,
    criterion: str = "l2", ties: str = "first", phase: Any = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Adaptive polyphase sampling: keep the polyphase component of largest norm.

    Chaman & Dokmanic (2021), ``aps_downsample_v2`` with the ``'l2'``
    criterion: of the ``sh * sw`` components ``x[..., i::sh, j::sw]`` keep, per
    sample, the one whose l2 norm over (C, H', W') is largest; all channels
    take the same component. Tested against a PyTorch rebuild of the
    reference (``tests/data/golden_antialias.npz``, stride 2, square inputs)
    and a brute-force loop over components.

    Parameters
    ----------
    x : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
        4-D input chooses per sample ``n``; 2-D and 3-D input is one sample.
    stride : int or (int, int), optional
    circular_pad_odd : bool, keyword-only
        If H (W) is not a multiple of the stride, wrap-pad at the bottom
        (right) to the next multiple (the reference's ``aps_pad`` for stride
        2). If False, such sizes raise ``ValueError``.
    return_phase : bool, keyword-only
        Also return the chosen phase ``(i, j)``.
    criterion : {'l2', 'l1', 'linf', 'max', 'l2_min', 'l1_min'}, keyword-only
        Which component is kept, the official ``apspool_criterion``: the
        largest l2 norm (the default), l1 norm, max ``|x|`` (``l_infty``), max
        ``x`` (``non_abs_max``), or the smallest l2 / l1 norm. The official
        names are accepted too.
    ties : {'first', 'official'}, keyword-only
        Among exactly equal scores keep the lowest row-major index
        ``i * sw + j`` (``'first'``, the default), or the first in the
        reference's order (0,0), (1,0), (0,1), (1,1) -- columns first
        (``'official'``, what ``torch.argmax`` over its components keeps).
    phase : (int, int) or array of shape (N, 2), keyword-only
        Take these components instead of choosing (the official
        ``polyphase_indices``): with ``return_phase=True`` on one map, a
        caller applies the same choice to others (a skip connection).
        ``criterion`` and ``ties`` are then not used.

    Returns
    -------
    out : ndarray, shape (..., ceil(H / sh), ceil(W / sw)), dtype of ``x``
    phase : ndarray of int64, shape (N, 2) for 4-D input, else (2,)
        Only with ``return_phase``: row and column offset of the component.

    Notes
    -----
    Components are ordered row-major (index ``i * sw + j``) and ties in the
    norm go to the lowest index, so a constant input keeps phase (0, 0). The
    squared values are summed in float64 after sorting, so the comparison is
    exact and invariant to circular shifts (no tolerance is applied).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0., 1., 0., 2.],
    ...               [0., 0., 0., 0.],
    ...               [0., 3., 0., 0.],
    ...               [0., 0., 0., 0.]])
    >>> out, phase = aps_downsample(x, 2, return_phase=True)
    >>> out, phase
    (array([[1., 2.],
           [3., 0.]]), array([0, 1]))
    >>> aps_downsample(np.ones((2, 3, 3)), return_phase=True)[1]  # ties: lowest index
    array([0, 0])
    >>> aps_downsample(np.ones((3, 3)), circular_pad_odd=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: (H, W) = (3, 3) is not a multiple of stride=(2, 2); ...
    """
    stride_ = pair(stride, "stride")
    pad_odd = check_flag(circular_pad_odd, "circular_pad_odd")
    want_phase = check_flag(return_phase, "return_phase")
    rule = _aps_rule(criterion, ties, phase)
    planes, lead = as_planes(x)
    out, chosen = _aps_planes(planes, lead, stride_, pad_odd, rule)
    out = restore_planes(out, lead)
    return (out, _phase_out(chosen, lead)) if want_phase else out


def aps_pool2d(
    x: Any,
    size: Any = 2,
    stride: Any = 2,
    blur_size: int = 1,
    *,
    circular: bool = True,
    return_phase: bool = False,
    criterion: str = "l2",
    ties: str = "first",
    phase: Any = None,
    blur_pad: str | None = None,
    pad_off: int = 0,
    peer: str | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Max pooling with APS subsampling (Chaman & Dokmanic 2021).

    ``max(size, stride=1) -> blur(blur_size, stride=1) -> aps_downsample(stride)``,
    the reference's ``circular_pad([0, 1, 0, 1]), nn.MaxPool2d(2, 1),
    ApsPool(filt_size=blur_size, stride=2)``. Tested against a PyTorch rebuild
    of that sequence (``tests/data/golden_antialias.npz``).

    Parameters
    ----------
    x : array_like, shape (H, W), (C, H, W) or (N, C, H, W)
    size : int or (int, int), optional
        Max window; ``1`` skips the max (pure APS, after the optional blur).
    stride : int or (int, int), optional
        APS stride.
    blur_size : int, optional
        Binomial blur before APS, 1..7 (1 = none, the reference's default).
    circular : bool, keyword-only
        True (the default, as the reference): the max stage wrap-pads
        ``size - 1`` at the bottom/right and keeps H, the blur wraps. Then for
        H and W multiples of the stride, shifting the input circularly by any
        ``(dy, dx)`` shifts the output circularly (barring exact ties of the
        component norms). False: no padding for the max (``H - size + 1``) and
        reflect padding for the blur (an APS after MaxBlurPool's stages).
    return_phase : bool, keyword-only
        Also return the chosen phase, as :func:`aps_downsample`.
    criterion, ties, phase : keyword-only
        As :func:`aps_downsample`.
    blur_pad, pad_off, peer : keyword-only
        The blur's padding when not ``circular``, as :func:`blur2d`
        (``ApsPool(pad_type='zero')`` is ``circular=False, blur_pad='zero'``).

    Returns
    -------
    out : ndarray, dtype of ``x``
        Circular: ``(..., ceil(H / sh), ceil(W / sw))``; otherwise
        ``ceil((H - size + 1) / sh)``, likewise W.
    phase : ndarray of int64
        Only with ``return_phase``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> aps_pool2d(x, return_phase=True)
    (array([[10., 11.],
           [14., 15.]]), array([1, 1]))

    A circular shift of the input shifts the output circularly:

    >>> x = np.random.default_rng(0).standard_normal((3, 8, 8))
    >>> y = aps_pool2d(x)
    >>> z = aps_pool2d(np.roll(x, (1, 3), axis=(-2, -1)))
    >>> [(k, l) for k in range(4) for l in range(4) if np.array_equal(z, np.roll(y, (k, l), axis=(-2, -1)))]
    [(0, 2)]
    """
    size_ = pair(size, "size")
    stride_ = pair(stride, "stride")
    m = _blur_size(blur_size)
    circ = check_flag(circular, "circular")
    want_phase = check_flag(return_phase, "return_phase")
    bp = _blur_pad(circ, blur_pad, pad_off, peer)
    rule = _aps_rule(criterion, ties, phase)
    planes, lead = as_planes(x)
    _check_fits(planes, size_, circ)
    out, chosen = _aps_pool(planes, lead, size_, stride_, m, circ, bp, rule)
    out = restore_planes(out, lead)
    return (out, _phase_out(chosen, lead)) if want_phase else out


# ----------------------------------------------------------------------------- the pooling modes
#
# What pool2d(x, mode, ...), the stack's mode(...) and `poolcli run --pool mode`
# call: the same cores as the public functions above, with pool2d's parameter
# names (stride defaults to size; padding_mode='circular' wraps every step).


def _mode_args(size: Any, stride: Any, blur_size: Any, padding_mode: Any, blur_pad: Any, pad_off: Any,
               peer: Any) -> tuple:
    circular = check_padding_mode(padding_mode)
    size_ = pair(size, "size")
    stride_ = size_ if stride is None else pair(stride, "stride")
    return size_, stride_, _blur_size(blur_size), circular, _blur_pad(circular, blur_pad, pad_off, peer)


def blurpool_mode(
    x: Any, size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, *, blur_size: int = 3,
    padding_mode: str = "default", blur_pad: str | None = None, pad_off: int = 0, peer: str = "none",
) -> np.ndarray:
    """The ``blurpool`` mode: max with ``size``, stride 1, ``padding`` and ``dilation``, then BlurPool(``stride``).

    :func:`max_blur_pool2d` with pool2d's parameters (Zhang 2019,
    adobe/antialiased-cnns' MaxBlurPool); ``blur_pad``, ``pad_off`` and
    ``peer`` as :func:`blur2d` (``padding_mode='circular'`` wins over them).

    >>> blurpool_mode(np.arange(16.0).reshape(4, 4), 2).shape
    (2, 2)
    >>> blurpool_mode(np.ones((5, 5)), 2, stride=2, peer="kornia")
    array([[0.5625, 0.75  ],
           [0.75  , 1.    ]])
    """
    size_, stride_, m, circular, bp = _mode_args(size, stride, blur_size, padding_mode, blur_pad, pad_off, peer)
    planes, lead = as_planes(x)
    return restore_planes(_blurpool(planes, size_, stride_, padding, dilation, m, circular, bp), lead)


def blur_mode(
    x: Any, size: Any, stride: Any = None, *, blur_size: int = 3, padding_mode: str = "default",
    blur_pad: str | None = None, pad_off: int = 0, peer: str = "none",
) -> np.ndarray:
    """The ``blur`` mode: :func:`blur2d` alone (``size`` only sets the default stride).

    >>> blur_mode(np.ones((4, 4)), 2)
    array([[1., 1.],
           [1., 1.]])
    >>> blur_mode(np.ones((4, 4)), 2, peer="kornia")  # zero padding
    array([[0.5625, 0.75  ],
           [0.75  , 1.    ]])
    >>> blur_mode(np.ones((4, 4)), 2, pad_off=1).shape  # antialiased-cnns' pad_off
    (3, 3)
    """
    _, stride_, m, _, bp = _mode_args(size, stride, blur_size, padding_mode, blur_pad, pad_off, peer)
    planes, lead = as_planes(x)
    return restore_planes(_blur_planes(planes, stride_, m, bp), lead)


def aps_mode(
    x: Any, size: Any, stride: Any = None, *, blur_size: int = 1, padding_mode: str = "default",
    blur_pad: str | None = None, pad_off: int = 0, peer: str = "none", criterion: str = "l2",
    ties: str = "first",
) -> np.ndarray:
    """The ``aps`` mode: max with ``size`` and stride 1, an optional blur, then APS (``stride``).

    :func:`aps_pool2d` with pool2d's parameters; ``blur_size=1`` (no blur)
    by default, as :func:`aps_pool2d` and the reference. Not circular (the
    default ``padding_mode``): no padding for the max and ``blur_pad``
    (reflect) for the blur; ``'circular'``: wrapped everywhere.
    ``criterion`` and ``ties`` as :func:`aps_downsample`.

    >>> aps_mode(np.arange(16.0).reshape(4, 4), 2, padding_mode="circular")
    array([[10., 11.],
           [14., 15.]])
    >>> aps_mode(np.arange(16.0).reshape(4, 4), 2, padding_mode="circular", criterion="l2_min")
    array([[ 5.,  7.],
           [13., 15.]])
    """
    size_, stride_, m, circular, bp = _mode_args(size, stride, blur_size, padding_mode, blur_pad, pad_off, peer)
    rule = _aps_rule(criterion, ties)
    planes, lead = as_planes(x)
    out, _ = _aps_pool(planes, lead, size_, stride_, m, circular, bp, rule)
    return restore_planes(out, lead)
