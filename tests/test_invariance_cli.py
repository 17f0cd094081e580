"""`poolcli invariance`: what the numbers must show, on synthetic and sample images."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from poolcli.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"
NATURAL = [SAMPLES / "texture.png", SAMPLES / "scene.png"]
KEYS = {"input", "method", "stage", "stage_name", "shift", "cosine", "rel_l2", "equiv_rel_l2", "equiv_offset", "global_rel_diff"}


def invariance(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "inv"
    result = runner.invoke(app, ["invariance", *args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return json.loads((out / "invariance.json").read_text())


def records(report: dict, **match) -> list[dict]:
    return [r for r in report["records"] if all(r[k] == v for k, v in match.items())]


@pytest.fixture(scope="module")
def noise_png(tmp_path_factory) -> Path:
    """A 64x48 random image without ties (APS needs a unique largest component)."""
    rng = np.random.default_rng(7)
    p = tmp_path_factory.mktemp("img") / "noise.png"
    Image.fromarray(rng.integers(0, 256, (48, 64), dtype=np.uint8)).save(p)
    return p


@pytest.mark.parametrize("filt", ["none", "sobel"])
def test_shifts_that_are_multiples_of_the_stride_only_move_the_map(tmp_path, noise_png, filt):
    rep = invariance(
        tmp_path, str(noise_png), "--filter", filt, "--pool", "max", "--size", "2",
        "--shifts", "0,2,4,6", "--compare", "max,avg,blurpool,aps",
    )
    assert "circular" in rep["note"]
    for method in ("max", "avg", "blurpool", "aps"):
        for r in records(rep, method=method):
            if r["stage_name"] in ("max", "avg", "blurpool", "aps"):
                dy, dx = r["shift"]
                assert r["equiv_rel_l2"] < 1e-6, r
                if method != "aps":  # aps may pick another phase: any offset is fine as long as it only moved
                    assert r["equiv_offset"] == [dy // 2, dx // 2], r


def test_two_stage_stack_total_stride_four(tmp_path, noise_png):
    rep = invariance(tmp_path, str(noise_png), "--stack", "sobel | max(2) | avg(2)", "--shifts", "0,4,8")
    last = records(rep, stage=3)
    assert len(last) == 3
    for r in last:
        assert r["equiv_rel_l2"] < 1e-6
        assert r["equiv_offset"] == [0, r["shift"][1] // 4]


@pytest.mark.parametrize("image", NATURAL, ids=lambda p: p.name)
def test_odd_shift_through_stride_two_max_pooling_aliases(tmp_path, image):
    rep = invariance(tmp_path, str(image), "--pool", "max", "--size", "2", "--stride", "2", "--shifts", "1")
    (r,) = records(rep, stage=2)
    assert r["equiv_rel_l2"] > 0.05  # clearly above zero: aliasing


@pytest.mark.parametrize("image", NATURAL, ids=lambda p: p.name)
def test_blurpool_lowers_aliasing_at_odd_shifts(tmp_path, image):
    rep = invariance(
        tmp_path, str(image), "--pool", "max", "--size", "2", "--shifts", "1,3,5", "--compare", "max,blurpool"
    )
    for shift in ([0, 1], [0, 3], [0, 5]):
        (m,) = records(rep, method="max", stage=2, shift=shift)
        (b,) = records(rep, method="blurpool", stage=2, shift=shift)
        assert b["equiv_rel_l2"] < m["equiv_rel_l2"]


@pytest.mark.parametrize("image", NATURAL, ids=lambda p: p.name)
def test_aps_is_truly_shift_invariant_at_every_stage(tmp_path, image):
    rep = invariance(
        tmp_path, str(image), "--stack", "sobel | max(2) | max(2)", "--shifts", "0:5", "--direction", "grid",
        "--compare", "aps",
    )
    rs = records(rep, method="aps")
    assert len(rs) == 3 * 36
    for r in rs:
        assert r["equiv_rel_l2"] < 1e-6, r
        assert r["global_rel_diff"] < 1e-6, r


def test_same_inputs_give_the_same_numbers(tmp_path):
    args = [str(NATURAL[0]), "--pool", "max", "--shifts", "0:3", "--compare", "max,blurpool,aps"]
    a = invariance(tmp_path / "a", *args)
    b = invariance(tmp_path / "b", *args)
    assert a["records"] == b["records"]


def test_outputs_json_csv_plot_and_keys(tmp_path, noise_png):
    out = tmp_path / "o"
    res = runner.invoke(
        app, ["invariance", str(noise_png), "--pool", "max", "--shifts", "0:2", "--direction", "diag", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "invariance.json").read_text())
    assert rep["shifts"] == [[0, 0], [1, 1], [2, 2]]
    assert rep["records"] and all(KEYS <= set(r) for r in rep["records"])
    rows = list(csv.DictReader((out / "invariance.csv").open()))
    assert len(rows) == len(rep["records"])
    assert set(KEYS) <= set(rows[0])
    pytest.importorskip("matplotlib")
    with Image.open(out / "invariance.png") as im:
        assert im.size[0] > 100
    # the terminal shows a table per method and the ranking
    assert "equiv_rel_l2" in res.output and "ranked" in res.output


def test_json_to_stdout(tmp_path, noise_png):
    res = runner.invoke(app, ["invariance", str(noise_png), "--shifts", "1", "--json", "--out", str(tmp_path / "j")])
    assert res.exit_code == 0
    rep = json.loads(res.stdout)
    assert rep["records"][0]["shift"] == [0, 1]


def test_crop_mode_follows_zhangs_protocol(tmp_path, noise_png):
    rep = invariance(
        tmp_path, str(noise_png), "--filter", "none", "--pool", "max", "--size", "2", "--shifts", "0,2,4",
        "--shift-mode", "crop",
    )
    assert rep["shift_mode"] == "crop"
    for r in records(rep, stage=1):
        assert r["equiv_rel_l2"] < 1e-6
        assert r["equiv_offset"] == [0, r["shift"][1] // 2]
    rep1 = invariance(tmp_path / "c1", str(noise_png), "--pool", "max", "--shifts", "1", "--shift-mode", "crop")
    assert records(rep1, stage=2)[0]["equiv_rel_l2"] > 0


def test_grid_direction_counts(tmp_path, noise_png):
    rep = invariance(tmp_path, str(noise_png), "--shifts", "0,1,2", "--direction", "grid")
    assert len(rep["shifts"]) == 9


@pytest.mark.parametrize(
    "args",
    [["--shifts", "a:b"], ["--compare", "max,nope"], ["--direction", "up"], ["--stack", "max(2", "--shifts", "1"]],
)
def test_bad_options_exit_two(tmp_path, noise_png, args):
    res = runner.invoke(app, ["invariance", str(noise_png), *args, "--out", str(tmp_path / "x")])
    assert res.exit_code == 2, res.output


def test_broken_file_is_named_and_exit_one(tmp_path, noise_png):
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    res = runner.invoke(app, ["invariance", str(noise_png), str(bad), "--shifts", "1", "--out", str(tmp_path / "b")])
    assert res.exit_code == 1
    assert "bad.png" in res.output and "Traceback" not in res.output
    rep = json.loads((tmp_path / "b" / "invariance.json").read_text())
    assert rep["failures"][0]["path"].endswith("bad.png")
    assert rep["records"]


def test_odd_sized_images_are_cropped_onto_the_pooling_grid(tmp_path):
    """A 45x37 image, shifted by multiples of the total stride in y and x: the maps only move."""
    rng = np.random.default_rng(3)
    p = tmp_path / "odd.png"
    Image.fromarray(rng.integers(0, 256, (45, 37), dtype=np.uint8)).save(p)
    rep = invariance(
        tmp_path, str(p), "--stack", "sobel | max(2) | max(2)", "--shifts", "0,4,8", "--direction", "grid",
        "--compare", "max,avg,blurpool,aps",
    )
    assert "cropped" in rep["note"]
    for r in rep["records"]:
        assert r["equiv_rel_l2"] < 1e-6, r


@pytest.mark.parametrize(("compare", "says"), [
    ("quantile", "--compare: quantile: give q in the method"),        # listed in --help: not 'unknown'
    ("max,Quantile()", "--compare: quantile: give q in the method"),
    ("max,none", "unknown method(s) none;"),                            # as typed, not its alias 'identity'
])
def test_compare_names_what_is_wrong_with_a_method(tmp_path, noise_png, compare, says):
    res = runner.invoke(app, ["invariance", str(noise_png), "--compare", compare, "--shifts", "1",
                              "--out", str(tmp_path / "x")])
    assert res.exit_code == 2, res.output
    assert says in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "x").exists()


def test_compare_error_lists_the_methods_its_help_lists(tmp_path, noise_png):
    """The list after "known:" is the one in --help (quantile was missing from the error's)."""
    from poolcli.cli import _compare_help

    res = runner.invoke(app, ["invariance", str(noise_png), "--compare", "max,all", "--shifts", "1",
                              "--out", str(tmp_path / "x")])
    assert res.exit_code == 2, res.output
    known = res.output.split("known: ", 1)[1].split()
    listed = _compare_help().split("any of ", 1)[1].split(", with arguments", 1)[0]
    assert [m.strip(",") for m in known] == listed.split(", ")
    assert "quantile" in listed


def test_compare_quantile_with_its_q_runs(tmp_path, noise_png):
    rep = invariance(tmp_path, str(noise_png), "--compare", "max,quantile(q=0.75)", "--shifts", "1")
    assert list(rep["methods"]) == ["max", "quantile(q=0.75)"]


def test_an_image_too_small_for_a_stage_names_the_stage_as_run_does(tmp_path):
    """A 1x1 image: `invariance` said only "size=(2, 2) is too large ..."; like `run`, it names the stage."""
    from PIL import Image
    from typer.testing import CliRunner

    from poolcli.cli import app

    Image.new("L", (1, 1), 3).save(tmp_path / "one.png")
    Image.new("L", (16, 16), 3).save(tmp_path / "ok.png")
    r = CliRunner().invoke(app, ["invariance", str(tmp_path / "one.png"), str(tmp_path / "ok.png"), "-q",
                                 "--compare", "max,avg", "-o", str(tmp_path / "o")])
    assert r.exit_code == 1, r.output
    line = next(ln for ln in r.output.splitlines() if "one.png" in ln)
    assert "stage 2 (max(size=2, stride=2" in line and "too large" in line
    report = json.loads((tmp_path / "o" / "invariance.json").read_text())
    assert report["batch_summary"]["processed"] == 1 and report["batch_summary"]["failed"] == 1
    assert "stage 2 (max(size=2, stride=2" in json.dumps(report["failures"])


def test_the_ranking_says_what_a_dash_means_only_when_it_has_one():
    from poolcli.report import summary_table

    full = {"method": "max", "mean_equiv_rel_l2": 0.1, "worst_equiv_rel_l2": 0.3, "mean_rel_l2": 0.5,
            "mean_global_rel_diff": 0.01, "final_cosine": 0.9}
    assert "- = no value" not in summary_table([full]).caption
    dashed = {**full, "mean_equiv_rel_l2": None, "worst_equiv_rel_l2": None}
    assert "- = no value (no shift but 0,0, or NaN or infinite values in the maps)" in summary_table([full, dashed]).caption
