"""The stack language: parsing, the canonical form, errors with positions, presets, apply_stack."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import ref_pool2d

from poolcli.errors import StackSpecError, UsageError
from poolcli.filters import FILTERS, apply_filter, get_filter
from poolcli.stack import (
    PRESETS,
    Op,
    Stack,
    Stage,
    apply_stack,
    one_stage_stack,
    parse_stack,
    preset,
)

HYP = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def roundtrip(spec: str) -> Stack:
    """parse(spec), and check that its canonical string parses back to the same stack and string."""
    s1 = parse_stack(spec)
    canonical = str(s1)
    s2 = parse_stack(canonical)
    assert s2 == s1, (spec, canonical)
    assert str(s2) == canonical
    return s1


# ----------------------------------------------------------------------------- parse and canonical form

CANONICAL = {
    # aliases and case
    "maxpool(2)": "max(size=2, stride=2)",
    "MAX(2)": "max(size=2, stride=2)",
    "MaxPool(k=2)": "max(size=2, stride=2)",
    "avgpool(2)": "avg(size=2, stride=2)",
    "mean(2)": "avg(size=2, stride=2)",
    "average(2)": "avg(size=2, stride=2)",
    "minpool(3, 1)": "min(size=3, stride=1)",
    "lppool(2, p=3)": "lp(size=2, stride=2, p=3.0)",
    "lp(2, norm=2)": "lp(size=2, stride=2, p=2.0)",
    "gmax": "global-max",
    "gavg": "global-avg",
    "global_mean": "global-avg",
    "amax(7)": "adaptive-max(output_size=7)",
    "adaptive-mean(size=3x5)": "adaptive-avg(output_size=3x5)",
    # positional and keyword arguments
    "max(3, 2)": "max(size=3, stride=2)",
    "max(3, 2, 1)": "max(size=3, stride=2, padding=1)",
    "avg(3, 2, 1, ceil)": "avg(size=3, stride=2, padding=1, ceil_mode=true)",
    "avg(3, 2, 1, 1, true)": "avg(size=3, stride=2, padding=1, ceil_mode=true)",
    "max(size=3, stride=2, padding=1)": "max(size=3, stride=2, padding=1)",
    "max(k=3, s=2, pad=1, d=2)": "max(size=3, stride=2, padding=1, dilation=2)",
    "max(stride=1, size=2)": "max(size=2, stride=1)",
    "max(2, stride=2)": "max(size=2, stride=2)",  # the default stride, spelled: same stack
    "max(2, padding=0, dilation=1, ceil=false)": "max(size=2, stride=2)",  # defaults dropped
    # pairs and four-tuples
    "max(2x3)": "max(size=2x3, stride=2x3)",
    "max(2x2)": "max(size=2, stride=2)",
    "max(3x3, 1x2, 1x0)": "max(size=3, stride=1x2, padding=1x0)",
    "max(2, padding=1x0x1x0)": "max(size=2, stride=2, padding=1x0x1x0)",
    "avg(3, padding=same)": "avg(size=3, stride=3, padding=same)",
    "avg(3, padding=SAME)": "avg(size=3, stride=3, padding=same)",
    "avg(3, padding=valid)": "avg(size=3, stride=3, padding=valid)",
    # flags
    "avg(2, ceil)": "avg(size=2, stride=2, ceil_mode=true)",
    "avg(2, ceil_mode=yes)": "avg(size=2, stride=2, ceil_mode=true)",
    "avg(2, count_include_pad=false)": "avg(size=2, stride=2, count_include_pad=false)",
    "avg(2, count_include_pad)": "avg(size=2, stride=2)",
    "avg(2, divisor_override=3)": "avg(size=2, stride=2, divisor_override=3)",
    "max(2, padding_mode=circular)": "max(size=2, stride=2, padding_mode=circular)",
    # filters, banks, activations
    "sobel": "sobel",
    "Sobel_X": "sobel-x",
    "sobel-x+sobel-y": "sobel-x + sobel-y",
    "sobel-x + sobel-y + laplace | relu | max(2)": "sobel-x + sobel-y + laplace | relu | max(size=2, stride=2)",
    "gaussian(2)": "gaussian(sigma=2.0)",
    "gaussian(sigma=0.5, mode=mirror)": "gaussian(sigma=0.5, mode=mirror)",
    "gaussian(sigma=1)": "gaussian",  # the default sigma
    "box(2x3, stride=2)": "box(size=2x3, stride=2)",
    "sobel(boundary=wrap, stride=2, d=2)": "sobel(mode=wrap, stride=2, dilation=2)",
    "sobel(mode=constant, cval=0.5)": "sobel(mode=constant, cval=0.5)",
    "sobel(cval=-1e-5)": "sobel(cval=-1e-05)",
    "relu | abs": "relu | abs",
    "relu()": "relu",
    # quoted kernels
    'conv(kernel="1,0,-1;2,0,-2;1,0,-1")': 'conv(kernel="1,0,-1;2,0,-2;1,0,-1")',
    "conv('1 0 -1; 2 0 -2; 1 0 -1')": 'conv(kernel="1 0 -1; 2 0 -2; 1 0 -1")',
    'conv("1/4 1/4; 1/4 1/4", stride=2) | relu': 'conv(kernel="1/4 1/4; 1/4 1/4", stride=2) | relu',
    'sobel-x + conv(kernel="0,1;1,0")': 'sobel-x + conv(kernel="0,1;1,0")',
    # none / identity stages vanish
    "none | max(2)": "max(size=2, stride=2)",
    "identity | max(2) | none": "max(size=2, stride=2)",
    "none": "identity",
    # anti-aliased pools
    "blurpool(2)": "blurpool(size=2, stride=2)",
    "blurpool(3, stride=2, padding=1, blur=5)": "blurpool(size=3, stride=2, padding=1, blur_size=5)",
    "aps(2)": "aps(size=2, stride=2)",
    # whitespace
    "  sobel   |max( 2 ,stride = 1 )  ": "sobel | max(size=2, stride=1)",
}


@pytest.mark.parametrize("spec", list(CANONICAL))
def test_parse_gives_canonical_string(spec):
    assert str(roundtrip(spec)) == CANONICAL[spec]


@pytest.mark.parametrize("canonical", sorted(set(CANONICAL.values())))
def test_canonical_strings_are_fixed_points(canonical):
    assert str(roundtrip(canonical)) == canonical


def test_parse_structure():
    s = parse_stack("sobel-x + sobel-y | relu | avg(3, 2, 1, ceil) | gaussian(2)")
    assert isinstance(s, Stack) and len(s) == 4
    bank, act, pool, blur = s.stages
    assert [op.name for op in bank.ops] == ["sobel-x", "sobel-y"]
    assert bank.kind == "filter" and bank.name == "sobel-x+sobel-y"
    assert act.kind == "activation" and act.name == "relu"
    assert pool.kind == "pool"
    op = pool.ops[0]
    assert (op.get("size"), op.get("stride"), op.get("padding"), op.get("ceil_mode")) == ((3, 3), (2, 2), (1, 1), True)
    assert op.get("count_include_pad") is True and op.get("dilation") == (1, 1)
    assert blur.ops[0].get("sigma") == 2.0
    assert [st.kind for st in s] == ["filter", "activation", "pool", "filter"]


def test_parsed_stacks_are_hashable_values():
    a, b = parse_stack("max(2)"), parse_stack("maxpool(k=2, stride=2)")
    assert a == b and hash(a) == hash(b)
    assert parse_stack("max(2)") != parse_stack("max(3)")


def test_empty_identity_stack():
    s = parse_stack("none")
    assert len(s) == 0 and s == Stack(())
    assert parse_stack(str(s)) == s


def test_large_and_small_floats_round_trip():
    """Floats whose repr uses an exponent must still round-trip through the canonical form."""
    for spec in ("sobel(cval=1e20)", "sobel(cval=1e16)", "sobel(cval=-3e17)", "gaussian(sigma=1e-7)", "sobel(cval=123456789.5)"):
        roundtrip(spec)


# ----------------------------------------------------------------------------- errors and positions


def error_of(spec: str) -> StackSpecError:
    with pytest.raises(StackSpecError) as exc:
        parse_stack(spec)
    err = exc.value
    assert isinstance(err, ValueError) and isinstance(err, UsageError)
    assert err.spec == spec
    return err


def caret_column(err: StackSpecError) -> int:
    """The caret's column under the quoted spec in the message."""
    lines = str(err).splitlines()
    spec_line = next(i for i, ln in enumerate(lines) if ln.strip() == err.spec.strip())
    indent = lines[spec_line].index(err.spec.strip()) - (len(err.spec) - len(err.spec.lstrip()))
    return lines[spec_line + 1].index("^") - indent


# spec -> (a fragment of the message, the positions that count as "the offending token")
ERRORS = {
    "bogus(2)": ("unknown stage 'bogus'", {0}),
    "sobel | maxx(2)": ("unknown stage 'maxx'", {8}),
    "max(2, foo=1)": ("unknown argument 'foo'", {7}),
    "max(2, p=2)": ("unknown argument 'p'", {7}),
    "max(2": ("expected ')'", {5}),
    "sobel | max(2, stride=1": ("expected ')'", {23}),
    "": ("empty", {0}),
    "|": ("expected a stage name", {0}),
    "max(2) |": ("expected a stage name", {8}),
    "max(2) | | avg(2)": ("expected a stage name", {9}),
    "sobel +": ("expected a stage name", {7}),
    "max(2) max(2)": ("expected '|'", {7}),
    "max(2,)": ("expected an argument", {6}),
    "max(size=)": ("expected a value after 'size='", {9}),
    "max(2, size=3)": ("given twice", {7}),
    "max(0)": ("must be >= 1", {4}),
    "max(abc)": ("expected an int", {4}),
    "max(2.5)": ("expected an int", {4}),
    "max(2x3x4)": ("expected 2 values", {4}),
    "max(2, stride=-1)": ("must be >= 1", {7, 14}),
    "max(2, padding=-1)": ("must be >= 0", {7, 15}),
    "avg(2, divisor_override=0)": ("non-zero", {7, 24}),
    "avg(2, ceil=maybe)": ("expected true or false", {7, 12}),
    "sobel(mode=reflect101)": ("expected one of reflect, mirror", {6, 11}),
    "gaussian(sigma=-1)": ("sigma", {9, 15}),
    "gaussian(sigma=nan)": ("finite", {9, 15}),
    "lp(2)": ("missing required argument 'p'", {0, 4}),
    "lp(2, p=0)": ("must be > 0", {6, 8}),
    "max()": ("missing required argument 'size'", {0, 4}),
    "relu(1)": ("at most 0 positional", {5}),
    '"max"': ("expected a stage name", {0}),
    "max(2) # comment": ("expected '|' between stages, got '#'", {7}),
    "max(2) ; avg(2)": ("expected '|'", {7}),
    # '+' joins filters only: the caret points at the '+' or at the non-filter
    "max(2) + sobel": ("only filters can be joined", {0, 7}),
    "sobel + max(2)": ("only filters can be joined", {6, 8}),
    "sobel | sobel-x + relu": ("only filters can be joined", {16, 18}),
    # PyTorch's rule: padding <= size // 2; the caret points at the padding
    "max(2, padding=2)": ("at most half", {7, 15}),
    "sobel | avg(3, 2, 2)": ("at most half", {18}),
    "max(2x4, padding=1x3)": ("at most half", {9, 17}),
}


@pytest.mark.parametrize("spec", list(ERRORS))
def test_error_message_and_position(spec):
    fragment, positions = ERRORS[spec]
    err = error_of(spec)
    assert fragment in str(err)
    assert err.position in positions, (spec, err.position, str(err))
    if spec.strip():
        assert caret_column(err) == err.position


def test_error_message_quotes_the_spec_and_points_with_a_caret():
    err = error_of("sobel | max(2, foo=1)")
    lines = str(err).splitlines()
    assert lines[0].startswith("max: unknown argument 'foo' (known: size, stride, padding, dilation, ceil_mode")
    assert lines[1].strip() == "sobel | max(2, foo=1)"
    assert lines[2].rstrip().endswith("^")
    assert len(lines) == 3


def test_unknown_stage_lists_known_ones():
    msg = str(error_of("maxx(2)"))
    for name in ("max", "avg", "sobel", "relu", "global-max"):
        assert name in msg


def test_bad_kernels_are_stack_errors(tmp_path):
    error_of('conv(kernel="1,0;0")')
    error_of('conv(kernel="nan")')
    error_of("conv(kernel=missing.npy)")
    error_of('conv(kernel=" ")')
    error_of("conv()")


def test_per_side_padding_must_leave_something_in_every_window():
    """pool2d rejects a side padding >= the window; the parser must too (a usage error, not a per-image one)."""
    err = error_of("max(2, padding=2x0x0x0)")
    assert err.position in (7, 15)
    parse_stack("max(3, padding=2x0x1x2)")  # fine: every side < 3


def test_huge_filter_sizes_are_stack_errors_not_memory_errors():
    """Building the kernel to validate it must not try to allocate terabytes."""
    # sizes whose kernels exceed any address space: numpy fails at once, nothing is allocated
    for spec in ("box(size=10000000)", "gaussian(sigma=1e15)"):
        error_of(spec)


def test_non_string_is_a_stack_error():
    with pytest.raises(StackSpecError):
        parse_stack(None)  # type: ignore[arg-type]


def test_unknown_preset_is_a_usage_error():
    with pytest.raises(UsageError, match="nope"):
        preset("nope")


# ----------------------------------------------------------------------------- hypothesis: random valid stacks

_POOL_ALIASES = {"max": ["max", "maxpool", "MAX"], "avg": ["avg", "avgpool", "mean"], "min": ["min", "minpool"], "lp": ["lp", "lppool"]}
_PLAIN_FILTERS = [n for n in FILTERS if n not in ("gaussian", "box", "none", "identity")]
_BOUNDARIES = ["reflect", "mirror", "nearest", "constant", "wrap"]


@st.composite
def pair_text(draw, lo: int, hi: int) -> tuple[str, tuple[int, int]]:
    a = draw(st.integers(lo, hi))
    if draw(st.booleans()):
        return str(a), (a, a)
    b = draw(st.integers(lo, hi))
    return f"{a}x{b}", (a, b)


@st.composite
def pool_stage(draw) -> str:
    mode = draw(st.sampled_from(["max", "avg", "min", "lp"]))
    name = draw(st.sampled_from(_POOL_ALIASES[mode]))
    size_t, (kh, kw) = draw(pair_text(1, 5))
    args: list[tuple[str, str]] = [("size", size_t)]
    if draw(st.booleans()):
        args.append(("stride", draw(pair_text(1, 4))[0]))
    pad = draw(st.sampled_from(["none", "int", "pair", "four", "same", "valid"]))
    if pad == "int":
        args.append(("padding", str(draw(st.integers(0, min(kh, kw) // 2)))))
    elif pad == "pair":
        args.append(("padding", f"{draw(st.integers(0, kh // 2))}x{draw(st.integers(0, kw // 2))}"))
    elif pad == "four":
        t, b = draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1))
        l, r = draw(st.integers(0, kw - 1)), draw(st.integers(0, kw - 1))
        args.append(("padding", f"{t}x{b}x{l}x{r}"))
    elif pad in ("same", "valid"):
        args.append(("padding", draw(st.sampled_from([pad, pad.upper()]))))
    if draw(st.booleans()):
        args.append(("dilation", draw(pair_text(1, 3))[0]))
    if draw(st.booleans()):
        args.append(("ceil_mode", draw(st.sampled_from(["true", "false"]))))
    if mode == "avg" and draw(st.booleans()):
        args.append(("count_include_pad", draw(st.sampled_from(["true", "false"]))))
    if mode == "avg" and draw(st.booleans()):
        args.append(("divisor_override", str(draw(st.integers(1, 9)))))
    if draw(st.booleans()):
        args.append(("padding_mode", draw(st.sampled_from(["default", "circular"]))))
    if mode == "lp":
        args.append(("p", draw(st.sampled_from(["1", "2", "3", "0.5", "2.5", "4.0"]))))
    # the leading arguments in declared order may be written positionally
    order = ["size", "stride", "padding", "dilation"]
    n_pos = 0
    while n_pos < len(args) and n_pos < len(order) and args[n_pos][0] == order[n_pos]:
        n_pos += 1
    n_pos = draw(st.integers(0, n_pos))
    head = [v for _, v in args[:n_pos]]
    tail = [(k, v) for k, v in args[n_pos:]]
    tail = draw(st.permutations(tail))
    aliases = {"size": ["size", "k", "kernel_size"], "stride": ["stride", "s"], "padding": ["padding", "pad"],
               "dilation": ["dilation", "d"], "ceil_mode": ["ceil_mode", "ceil"], "p": ["p", "norm"]}
    parts = head + [f"{draw(st.sampled_from(aliases.get(k, [k])))}={v}" for k, v in tail]
    return f"{name}({', '.join(parts)})"


@st.composite
def filter_op(draw) -> str:
    kind = draw(st.sampled_from(["plain", "gaussian", "box", "conv"]))
    args: list[str] = []
    if kind == "plain":
        name = draw(st.sampled_from(_PLAIN_FILTERS))
    elif kind == "gaussian":
        name = "gaussian"
        if draw(st.booleans()):
            sigma = draw(st.floats(0.1, 4.0, allow_nan=False))
            args.append(f"sigma={sigma!r}")
    elif kind == "box":
        name = "box"
        if draw(st.booleans()):
            args.append(f"size={draw(pair_text(1, 5))[0]}")
    else:
        name = "conv"
        rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        vals = draw(st.lists(st.integers(-3, 3), min_size=rows * cols, max_size=rows * cols))
        text = ";".join(",".join(str(v) for v in vals[r * cols : (r + 1) * cols]) for r in range(rows))
        q = draw(st.sampled_from(['"', "'"]))
        args.append(f"kernel={q}{text}{q}")
    if draw(st.booleans()):
        args.append(f"mode={draw(st.sampled_from(_BOUNDARIES))}")
    if draw(st.booleans()):
        args.append(f"cval={draw(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))!r}")
    if draw(st.booleans()):
        args.append(f"stride={draw(pair_text(1, 3))[0]}")
    if draw(st.booleans()):
        args.append(f"dilation={draw(pair_text(1, 3))[0]}")
    args = draw(st.permutations(args))
    return f"{name}({', '.join(args)})" if args else name


@st.composite
def other_stage(draw) -> str:
    kind = draw(st.sampled_from(["act", "adaptive", "global", "blur", "none"]))
    if kind == "act":
        return draw(st.sampled_from(["relu", "abs"]))
    if kind == "adaptive":
        name = draw(st.sampled_from(["adaptive-max", "adaptive-avg", "amax", "aavg"]))
        return f"{name}({draw(pair_text(1, 8))[0]})"
    if kind == "global":
        return draw(st.sampled_from(["global-max", "global-avg", "gmax", "gavg"]))
    if kind == "blur":
        name = draw(st.sampled_from(["blurpool", "blur", "aps"]))
        size_t, _ = draw(pair_text(1, 4))
        extra = f", blur_size={draw(st.integers(1, 7))}" if draw(st.booleans()) else ""
        return f"{name}({size_t}{extra})"
    return draw(st.sampled_from(["none", "identity"]))


@st.composite
def stack_spec(draw) -> str:
    stages = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["pool", "filters", "other"]))
        if kind == "pool":
            stages.append(draw(pool_stage()))
        elif kind == "filters":
            ops = draw(st.lists(filter_op(), min_size=1, max_size=3))
            stages.append(draw(st.sampled_from([" + ", "+"])).join(ops))
        else:
            stages.append(draw(other_stage()))
    return draw(st.sampled_from([" | ", "|", "  |  "])).join(stages)


@HYP
@given(stack_spec())
def test_random_valid_stacks_round_trip(spec):
    s = roundtrip(spec)
    n_identity = sum(1 for part in spec.split("|") if part.strip() in ("none", "identity"))
    assert len(s) == len(spec.split("|")) - n_identity


_TOKENS = [
    "max", "avg", "min", "lp", "sobel", "sobel-x", "laplace", "relu", "abs", "none", "conv", "gmax", "adaptive-avg",
    "blurpool", "(", ")", "|", "+", ",", "=", " ", "2", "3x2", "1x0x1x0", "-1", "0", "1.5", "nan", "inf", "1e3",
    "size", "stride", "padding", "p", "ceil", "same", "valid", "true", "kernel", "mode", "wrap", "sigma", "gaussian",
    '"1,0;0,1"', "'1 2'", '"', "'", "\\", "bogus", "é", "\t", "\n",
]


@HYP
@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(_TOKENS), max_size=14).map("".join)))
def test_garbage_parses_or_raises_stack_spec_error(text):
    try:
        s = parse_stack(text)
    except StackSpecError as err:
        assert err.position is None or 0 <= err.position <= len(text)
        return
    # whatever parses has a canonical form that parses back to it
    assert parse_stack(str(s)) == s


# ----------------------------------------------------------------------------- presets and apply_stack


@pytest.fixture(scope="module")
def image_64x48() -> np.ndarray:
    return np.random.default_rng(0).random((1, 48, 64), dtype=np.float32)


EXPECTED_PRESET_SHAPES = {
    "lenet5": [(2, 48, 64), (2, 48, 64), (2, 24, 32), (2, 24, 32), (2, 24, 32), (2, 12, 16)],
    "vgg": [(2, 48, 64), (2, 48, 64), (2, 48, 64), (2, 48, 64), (2, 24, 32),
            (2, 24, 32), (2, 24, 32), (2, 24, 32), (2, 24, 32), (2, 12, 16)],
    "resnet-stem": [(1, 24, 32), (1, 24, 32), (1, 12, 16)],
    "strided-conv": [(2, 48, 64), (2, 48, 64), (2, 24, 32), (2, 24, 32), (2, 12, 16)],
    "hierarchy": [(1, 48, 64), (1, 24, 32), (1, 12, 16), (1, 6, 8), (1, 3, 4)],
}


def test_required_presets_exist():
    assert {"lenet5", "vgg", "strided-conv"} <= set(PRESETS)
    lenet, vgg, strided = preset("lenet5"), preset("vgg"), preset("strided-conv")
    assert [s.ops[0].name for s in lenet if s.kind == "pool"] == ["avg", "avg"]
    assert [s.ops[0].name for s in vgg if s.kind == "pool"] == ["max", "max"]
    assert not any(s.kind in ("pool", "adaptive", "global") for s in strided)
    assert any(s.kind == "filter" and s.stride() == (2, 2) for s in strided)


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_round_trips_and_shapes(image_64x48, name):
    s = preset(name)
    assert s == parse_stack(PRESETS[name][1])
    assert str(roundtrip(PRESETS[name][1])) == str(s)
    maps = apply_stack(image_64x48, s)
    assert len(maps) == len(s)
    assert all(m.dtype == np.float32 for m in maps)
    if name in EXPECTED_PRESET_SHAPES:
        assert [m.shape for m in maps] == EXPECTED_PRESET_SHAPES[name]


def test_preset_names_are_case_insensitive():
    assert preset(" VGG ") == preset("vgg")


def test_apply_stack_matches_reference_step_by_step(image_64x48):
    s = parse_stack("sobel-x + sobel-y | abs | max(3, stride=2, padding=1) | avg(2, ceil) | global-max")
    maps = apply_stack(image_64x48, s)
    x = image_64x48
    bank = np.concatenate([apply_filter(x, get_filter("sobel-x")), apply_filter(x, get_filter("sobel-y"))])
    np.testing.assert_array_equal(maps[0], bank)
    np.testing.assert_array_equal(maps[1], np.abs(bank))
    np.testing.assert_array_equal(maps[2], ref_pool2d(maps[1], "max", 3, 2, 1))
    np.testing.assert_allclose(maps[3], ref_pool2d(maps[2], "avg", 2, ceil_mode=True), rtol=1e-6)
    assert maps[4].shape == (2, 1, 1)
    np.testing.assert_array_equal(maps[4][:, 0, 0], maps[3].max(axis=(1, 2)))


def test_apply_stack_empty_is_empty(image_64x48):
    assert apply_stack(image_64x48, parse_stack("none")) == []


def test_apply_stack_does_not_modify_input(image_64x48):
    before = image_64x48.copy()
    apply_stack(image_64x48, preset("vgg"))
    np.testing.assert_array_equal(image_64x48, before)


# ----------------------------------------------------------------------------- Stage.stride, one_stage_stack


STRIDES = {
    "max(2)": (2, 2),
    "max(3, stride=2)": (2, 2),
    "max(2x3)": (2, 3),
    "avg(3, stride=1x2)": (1, 2),
    "lp(2, p=2)": (2, 2),
    "blurpool(3, stride=2)": (2, 2),
    "sobel": (1, 1),
    "sobel(stride=2)": (2, 2),
    "box(size=2, stride=2x1)": (2, 1),
    'conv(kernel="1,1", stride=3)': (3, 3),
    "sobel-x + sobel-y": (1, 1),
    "relu": (1, 1),
    "adaptive-avg(7)": (1, 1),
    "global-max": (1, 1),
}


@pytest.mark.parametrize("spec", list(STRIDES))
def test_stage_stride(spec):
    (stage,) = parse_stack(spec).stages
    assert isinstance(stage, Stage)
    assert stage.stride() == STRIDES[spec]


def test_op_str_always_spells_the_pool_stride():
    assert str(Op("max", (("size", (2, 2)),))) == "max(size=2, stride=2)"
    assert str(parse_stack("max(3, 1)").stages[0]) == "max(size=3, stride=1)"


def test_one_stage_stack_like_the_command_line():
    s = one_stage_stack(["sobel"], "relu", "max", size=2, stride=2)
    assert str(s) == "sobel | relu | max(size=2, stride=2)"
    assert s == parse_stack("sobel | relu | max(2)")


def test_one_stage_stack_variants():
    assert str(one_stage_stack(["sobel-x", "gaussian(sigma=2)"], pool="avg", size=3, stride=2, padding=1)) == (
        "sobel-x + gaussian(sigma=2.0) | avg(size=3, stride=2, padding=1)"
    )
    assert str(one_stage_stack(["none"], pool="lp", size=(2, 3), p=2)) == "lp(size=2x3, stride=2x3, p=2.0)"
    assert str(one_stage_stack(None, pool="max", size=2, padding="same", ceil_mode=True)) == (
        "max(size=2, stride=2, padding=same, ceil_mode=true)"
    )
    assert str(one_stage_stack(["sobel"], pool="none")) == "sobel"
    assert str(one_stage_stack(["sobel"], pool=None)) == "sobel"
    assert one_stage_stack(["none"], pool=None) == Stack(())
    assert one_stage_stack(["sobel"], pool="max", size=2, stride=None) == parse_stack("sobel | max(2)")


def test_one_stage_stack_bad_values_are_stack_errors():
    with pytest.raises(StackSpecError):
        one_stage_stack(["sobel"], pool="max", size=0)
    with pytest.raises(StackSpecError):
        one_stage_stack(["sobel"], pool="max", size=2, padding=2)
    with pytest.raises(StackSpecError):
        one_stage_stack(["nope"], pool="max", size=2)
