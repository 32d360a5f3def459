"""Automatic folding within a board's budgets: the resource estimate, the fastest folding that
fits, and clear errors (with the numbers) for targets that cannot be met."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import boards
from hdlgen.build.design import make_design
from hdlgen.errors import HdlgenError
from hdlgen.fold import auto_fold, plan, predict
from hdlgen.engines.base import bram36
from hdlgen.fold.resources import budget, estimate, fastest_fit
from hdlgen.fold.timeline import fixed_stage, stages
from hdlgen.fuzz import random_resnet

ROOT = Path(__file__).resolve().parent.parent


def test_bram36_picks_the_cheapest_aspect_ratio():
    assert bram36(8, 64) == 0            # 512 bits: LUT RAM
    assert bram36(36, 512) == 0.5        # one RAMB18
    assert bram36(72, 512) == 1.0        # one RAMB36 (two halves)
    assert bram36(4096, 9) == 57.0       # wide and shallow: width decides
    assert bram36(64, 2048) == 4.0       # 2048 x 9 halves: 8 of them
    assert bram36(1, 40000) == 1.5       # three 16K x 1 halves


@pytest.fixture(scope="module")
def resnet14():
    return plan(random_resnet(np.random.default_rng(0)))


def test_estimate_grows_with_parallelism(resnet14):
    slow, fast = auto_fold(resnet14, 40000), auto_fold(resnet14, 10000)
    a, b = estimate(resnet14, slow), estimate(resnet14, fast)
    assert b.lut > a.lut and b.bram36 > a.bram36
    assert a.lut == sum(v["lut"] for v in a.per_engine.values())


def test_fastest_fit_is_the_fastest_within_the_budget(resnet14):
    bud = budget(boards.get("kc705"))
    fo, est = fastest_fit(resnet14, bud)
    assert est.fits(bud)
    cycles = predict(resnet14, fo)["cycles_per_image"]
    assert cycles >= fixed_stage(resnet14)[1]
    # every automatic folding that is faster does not fit
    faster = auto_fold(resnet14, cycles - 1)
    if max(s.cycles for s in stages(resnet14, faster)) < cycles:
        assert not estimate(resnet14, faster).fits(bud)


def test_tight_budget_slows_the_design(resnet14):
    board = boards.get("kc705")
    loose = predict(resnet14, fastest_fit(resnet14, budget(board))[0])["cycles_per_image"]
    tight = predict(resnet14, fastest_fit(resnet14, budget(board, 0.25, 0.5))[0])["cycles_per_image"]
    assert tight > loose


def test_no_folding_fits_a_tiny_budget(resnet14):
    bud = {"lut": 1000, "bram36": 2, "lut_share": 0.0, "bram_share": 0.0, "board": "tiny"}
    with pytest.raises(HdlgenError, match=r"no folding fits tiny: even at [\d,]+ cycles per image the estimate is .* LUT \(budget 1,000\)"):
        fastest_fit(resnet14, bud, slowest=200_000)


def test_fps_beyond_a_fixed_rate_stage_is_refused_with_numbers():
    g = random_resnet(np.random.default_rng(1), shape=(8, 8, 3), widths=(4, 8), classes=3)
    with pytest.raises(HdlgenError, match=r"--fps 1,000,000 at 200 MHz leaves 200 cycles per image, but stem_swu "
                                          r"\(swu, one pixel per cycle\) alone takes 576"):
        make_design(g, "r", fps=1e6, board=boards.get("kc705"))


def test_fps_over_the_budget_is_refused_with_numbers():
    g = random_resnet(np.random.default_rng(1))
    with pytest.raises(HdlgenError, match=r"needs 10,000 cycles per image; the cheapest folding for that is "
                                          r"estimated at .* LUT \(budget 101,900, 50% of kc705\).* BRAM36.*"
                                          r"the fastest folding that fits runs [\d,]+ images/s"):
        make_design(g, "r", fps=20000, board=boards.get("kc705"))


def test_build_report_explains_the_folding(tmp_path):
    g = random_resnet(np.random.default_rng(2), shape=(8, 8, 3), widths=(4, 8), classes=3)
    g.save(tmp_path / "net")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "hdlgen", "build", "--board", "kc705", "--model",
                        str(tmp_path / "net.json"), "--out", str(out), "--no-synth"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    report = (out / "report.md").read_text()
    assert "## Folding" in report and "fastest folding" in report
    assert "s1b0_conv2: engine mvau (the only engine for conv2d), PE" in report and "BRAM36" in report
    r = subprocess.run([sys.executable, "-m", "hdlgen", "build", "--board", "kc705", "--model",
                        str(tmp_path / "net.json"), "--out", str(tmp_path / "o2"), "--no-synth", "--fps", "1000000"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("error:") == 1 and "alone takes 576" in r.stderr
