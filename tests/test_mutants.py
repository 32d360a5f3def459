"""Fault injection into emitted cores: each kind finds its sites and edits exactly one line."""

import pytest

from hdlgen.verify.mutants import KINDS, apply, mutants

CORE = """module hdlgen_accel(clk);
  assign \\$9  = nf_i == 4'h9;
  assign \\$11  = r_port__addr + 1'h1;
  assign \\$14  = $signed(acc3) >= $signed(s3_thr[79:60]);
  assign \\$20  = { data[15:8], data[7:0], other[3:0] };
  assign \\$21  = zero == 4'h0;
endmodule
"""


@pytest.fixture
def core(tmp_path):
    d = tmp_path / "core"
    d.mkdir()
    (d / "hdlgen_accel.v").write_text(CORE)
    (d / "fc0_weights.mem").write_text("0f\na5\n")
    return d


def test_every_kind_is_found_and_applied(core, tmp_path):
    found = mutants(core, per_kind=5, seed=3)
    assert sorted({m.kind for m in found}) == sorted(KINDS)
    by_kind = {m.kind: m for m in found}
    assert by_kind["count-bound"].new.endswith("== 4'h8;")          # 4'h0 has no lower bound
    assert by_kind["step"].new.endswith("+ 2'h2;")
    assert ") > $signed(" in by_kind["compare"].new
    assert "{ data[7:0], data[15:8], other[3:0] }" in by_kind["lane-swap"].new
    flips = [m for m in found if m.kind == "mem-bit"]
    assert len(flips) == 2 and all(bin(int(m.old, 16) ^ int(m.new, 16)).count("1") == 1 for m in flips)
    for i, m in enumerate(found):
        out = apply(core, m, tmp_path / f"m{i}")
        before = (core / m.file).read_text().splitlines()
        after = (out / m.file).read_text().splitlines()
        assert [j for j, (a, b) in enumerate(zip(before, after)) if a != b] == [m.line]
        assert (core / m.file).read_text().splitlines() == before   # the original is untouched


def test_choice_follows_the_seed(core):
    assert mutants(core, 1, seed=5) == mutants(core, 1, seed=5)


def test_apply_refuses_a_changed_file(core, tmp_path):
    m = next(m for m in mutants(core) if m.kind == "step")
    (core / "hdlgen_accel.v").write_text(CORE.replace("r_port__addr", "q"))
    with pytest.raises(ValueError, match="not the line"):
        apply(core, m, tmp_path / "x")


def test_check_counts_what_the_simulation_catches(core):
    """A stand-in simulator that is wrong exactly when a memory word changed: those mutants
    are killed, the others survive, and the summary adds them up by kind."""
    from types import SimpleNamespace

    import numpy as np

    from hdlgen.verify.mutation import check, markdown, summary

    expected = np.array([1, 2])

    def simulate(folder, images):
        changed = (folder / "fc0_weights.mem").read_text() != (core / "fc0_weights.mem").read_text()
        hung = "2'h2" in (folder / "hdlgen_accel.v").read_text()
        return SimpleNamespace(outputs=expected + changed, tlast_missing=0, hung=hung)

    outcomes = check(core, None, expected, simulate, per_kind=5, seed=3, log=lambda line: None)
    s = summary(outcomes)
    assert s["per_kind"]["mem-bit"] == {"mutants": 2, "killed": 2}
    assert s["per_kind"]["step"] == {"mutants": 1, "killed": 1}
    assert s["per_kind"]["compare"] == {"mutants": 1, "killed": 0}
    assert s["killed"] == 3 and s["mutants"] == len(outcomes)
    assert {o.how for o in outcomes if o.killed} == {"2 wrong output(s)", "hung"}
    assert "| mem-bit | 2 | 2 |" in markdown(s, "t")
