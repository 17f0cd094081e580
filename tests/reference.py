"""Brute-force reference implementations of poolcli's pooling semantics.

Written independently of ``poolcli/pooling.py`` and deliberately naive: explicit
Python loops over every output pixel and every window tap, for small inputs only.
The semantics are PyTorch's ``torch.nn.functional`` ones (``max_pool2d``,
``avg_pool2d``, ``lp_pool2d``, ``adaptive_{max,avg}_pool2d``) plus poolcli's
documented extensions (``min``, per-side / ``"same"`` / ``"valid"`` padding,
dilation for ``avg``/``lp``).

To mirror PyTorch's CPU kernels bit for bit where that is possible:

* max/min only compare (``val > best or isnan(val)``, starting from -inf), so the
  result is always one of the input values (or the pad value);
* avg sums the taps in row-major order *in the input dtype* (torch's ``opmath``
  type for float32/float64 is the dtype itself) and divides once by the divisor;
* adaptive avg divides the sum by ``kh`` and then by ``kw`` (torch's
  ``sum / kh / kw``);
* lp is literally torch's composition ``(avg(x**p) * (kh*kw)) ** (1/p)``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

MODES = ("max", "avg", "min", "lp")


# --------------------------------------------------------------------------- #
# argument handling (independent of poolcli._checks)
# --------------------------------------------------------------------------- #
def _isint(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _pair(value, name):
    if _isint(value):
        a = b = int(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_isint(v) for v in value):
        a, b = int(value[0]), int(value[1])
    else:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if a < 1 or b < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return a, b


def _out_len(n, k, s, d, pb, pa, ceil_mode):
    """PyTorch's pooling_output_shape with pad ``pb`` before and ``pa`` after."""
    eff = d * (k - 1) + 1
    num = n + pb + pa - eff + ((s - 1) if ceil_mode else 0)
    out = num // s + 1  # floor division == torch's div_rtn
    if ceil_mode and (out - 1) * s >= n + pb:
        out -= 1
    return out


def resolve_padding(padding, H, W, kh, kw, sh, sw, dh, dw):
    """Return ``(top, bottom, left, right, same)`` and validate like PyTorch."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0, False
        if padding == "same":
            def one(n, k, s, d):
                out = -(-n // s)
                total = max(0, (out - 1) * s + d * (k - 1) + 1 - n)
                return total // 2, total - total // 2

            t, b = one(H, kh, sh, dh)
            l, r = one(W, kw, sw, dw)
            return t, b, l, r, True
        raise ValueError(f"padding must be an int, a pair, a 4-tuple, 'same' or 'valid', got {padding!r}")
    if _isint(padding) or (
        isinstance(padding, (tuple, list)) and len(padding) == 2 and all(_isint(v) for v in padding)
    ):
        ph, pw = (int(padding), int(padding)) if _isint(padding) else (int(padding[0]), int(padding[1]))
        if ph < 0 or pw < 0:
            raise ValueError(f"padding must be >= 0, got {padding!r}")
        # PyTorch checks the (undilated) kernel size: pad <= k // 2.
        if ph > kh // 2 or pw > kw // 2:
            raise ValueError(f"padding should be at most half of the kernel size, got {padding!r}")
        return ph, ph, pw, pw, False
    if isinstance(padding, (tuple, list)) and len(padding) == 4 and all(_isint(v) for v in padding):
        t, b, l, r = (int(v) for v in padding)
        if min(t, b, l, r) < 0:
            raise ValueError(f"padding must be >= 0, got {padding!r}")
        # poolcli's documented contract for per-side padding: each pad is smaller
        # than the dilated window (else a window could hold nothing but padding).
        if max(t, b) >= dh * (kh - 1) + 1 or max(l, r) >= dw * (kw - 1) + 1:
            raise ValueError(f"padding must be smaller than the dilated window, got {padding!r}")
        return t, b, l, r, False
    raise ValueError(f"padding must be an int, a pair, a 4-tuple, 'same' or 'valid', got {padding!r}")


def ref_output_shape(H, W, size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(OH, OW) of ``pool2d``; raises ValueError like the implementation should."""
    kh, kw = _pair(size, "size")
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    t, b, l, r, _ = resolve_padding(padding, H, W, kh, kw, sh, sw, dh, dw)
    oh = _out_len(H, kh, sh, dh, t, b, ceil_mode)
    ow = _out_len(W, kw, sw, dw, l, r, ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"output size ({oh}, {ow}) is too small for input size ({H}, {W}) with size {size!r}"
        )
    return oh, ow


# --------------------------------------------------------------------------- #
# pool2d
# --------------------------------------------------------------------------- #
def _planes(x):
    x = np.asarray(x)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"x must be 2D, 3D or 4D, got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    return x.reshape((-1,) + x.shape[-2:]), x.shape[:-2]


def ref_pool2d(
    x,
    mode,
    size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
    p=None,
):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    planes, lead = _planes(x)
    dt = planes.dtype.type
    H, W = planes.shape[-2:]
    kh, kw = _pair(size, "size")
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    t, b, l, r, same = resolve_padding(padding, H, W, kh, kw, sh, sw, dh, dw)
    if divisor_override is not None and (not _isint(divisor_override) or divisor_override < 1):
        raise ValueError(f"divisor_override must be a positive int, got {divisor_override!r}")
    oh, ow = ref_output_shape(H, W, (kh, kw), (sh, sw), (t, b, l, r) if not same else padding,
                              (dh, dw), ceil_mode)

    if mode == "lp":
        if p is None or not (float(p) > 0):
            raise ValueError(f"p must be > 0 for mode 'lp', got {p!r}")
        # torch.nn.functional.lp_pool2d: (avg_pool2d(x ** p) * (kw * kh)) ** (1 / p)
        xp = np.power(planes, dt(p) if not _isint(p) else p).astype(dt)
        avg = ref_pool2d(xp, "avg", (kh, kw), (sh, sw), padding, (dh, dw), ceil_mode,
                         count_include_pad, divisor_override)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            out = (avg * dt(kh * kw)) ** dt(1.0 / float(p))
        return out.astype(dt).reshape(lead + (oh, ow))

    out = np.empty((planes.shape[0], oh, ow), dtype=planes.dtype)
    for c in range(planes.shape[0]):
        P = planes[c]
        for i in range(oh):
            h0 = i * sh - t
            for j in range(ow):
                w0 = j * sw - l
                if mode in ("max", "min"):
                    # min(x) == -max(-x); pad value is -inf for max (+inf for min)
                    sign = 1.0 if mode == "max" else -1.0
                    best = dt(-np.inf)
                    for a in range(kh):
                        hh = h0 + a * dh
                        for bb in range(kw):
                            ww = w0 + bb * dw
                            if 0 <= hh < H and 0 <= ww < W:
                                v = dt(sign * P[hh, ww])
                            else:
                                v = dt(-np.inf)  # padding (or ceil-mode overhang)
                            if v > best or math.isnan(v):
                                best = v
                    out[c, i, j] = dt(sign * best)
                else:  # avg
                    s = dt(0.0)
                    count = 0
                    for a in range(kh):
                        hh = h0 + a * dh
                        for bb in range(kw):
                            ww = w0 + bb * dw
                            if 0 <= hh < H and 0 <= ww < W:
                                s = dt(s + P[hh, ww])
                            if same or not count_include_pad:
                                counted = 0 <= hh < H and 0 <= ww < W
                            else:
                                counted = (-t <= hh < H + b) and (-l <= ww < W + r)
                            count += counted
                    if divisor_override is not None:
                        div = divisor_override
                    else:
                        div = count
                    out[c, i, j] = dt(0.0) if div == 0 else dt(s / dt(div))
    return out.reshape(lead + (oh, ow))


# --------------------------------------------------------------------------- #
# adaptive
# --------------------------------------------------------------------------- #
def _adaptive_sizes(output_size, H, W):
    if output_size is None or _isint(output_size):
        os = (output_size, output_size)
    elif isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        os = tuple(output_size)
    else:
        raise ValueError(f"output_size must be an int or a pair, got {output_size!r}")
    res = []
    for v, n in zip(os, (H, W)):
        if v is None:
            res.append(n)
        elif _isint(v) and v >= 1:
            res.append(int(v))
        else:
            raise ValueError(f"output_size entries must be ints >= 1 or None, got {output_size!r}")
    return tuple(res)


def ref_adaptive_pool2d(x, mode, output_size):
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    planes, lead = _planes(x)
    dt = planes.dtype.type
    H, W = planes.shape[-2:]
    oh, ow = _adaptive_sizes(output_size, H, W)
    out = np.empty((planes.shape[0], oh, ow), dtype=planes.dtype)
    for c in range(planes.shape[0]):
        P = planes[c]
        for i in range(oh):
            h0 = (i * H) // oh
            h1 = -(-((i + 1) * H) // oh)
            for j in range(ow):
                w0 = (j * W) // ow
                w1 = -(-((j + 1) * W) // ow)
                if mode == "max":
                    best = dt(-np.inf)
                    for hh in range(h0, h1):
                        for ww in range(w0, w1):
                            v = P[hh, ww]
                            if v > best or math.isnan(v):
                                best = v
                    out[c, i, j] = best
                else:
                    s = dt(0.0)
                    for hh in range(h0, h1):
                        for ww in range(w0, w1):
                            s = dt(s + P[hh, ww])
                    out[c, i, j] = dt(dt(s / dt(h1 - h0)) / dt(w1 - w0))
    return out.reshape(lead + (oh, ow))


def ref_global_pool2d(x, mode):
    return ref_adaptive_pool2d(x, mode, 1)
