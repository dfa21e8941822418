"""Compiling criteria: bad rules refused with file and criterion id; null handling; screening order."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from hn005_sim.cli import main
from hn005_sim.eligibility import CriteriaConfig, compile_criteria
from hn005_sim.eligibility.engine import substitute
from hn005_sim.scenario.errors import ConfigError

from .conftest import candidates, load_cfg


def tiny(*criteria, **extra) -> CriteriaConfig:
    return CriteriaConfig.model_validate({"criterion": list(criteria), **extra})


def crit(id, rule, kind="inclusion", stage="prescreen", null="fail"):
    return {"id": id, "kind": kind, "stage": stage, "protocol_text": "words", "rule": rule, "null": null}


def problems(cfg) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        compile_criteria(cfg, file="c.toml")
    return [str(p) for p in exc.value.problems]


def test_unknown_column_names_file_criterion_and_suggestion():
    msg = problems(tiny(crit("a", "age_years > 1"), crit("crcl", "crcl_ml_mn >= 60")))
    assert msg == ['c.toml: criteria.criterion[1].rule (crcl): unknown column "crcl_ml_mn"'
                   ' (did you mean "crcl_ml_min"?)']


def test_syntax_error_duplicate_id_unknown_parameter_and_override():
    cfg = tiny(crit("a", "age_years >>= 1"), crit("a", "age_years > {agemax}"),
               parameters={"x": {"value": 1, "source": "protocol"}}, overrides={"y": 2})
    msg = problems(cfg)
    assert any("criterion[0].rule (a): SQL syntax error" in m for m in msg)
    assert any('criterion[1].id: duplicate id "a"' in m for m in msg)
    assert any("criterion[1].rule (a): unknown parameter {agemax}" in m for m in msg)
    assert any('criteria.overrides.y: unknown parameter "y"' in m for m in msg)
    assert any("criteria.parameters.x: no rule uses this parameter" in m for m in msg)


def test_non_boolean_rule_and_type_error_refused():
    assert "must be a true/false expression" in problems(tiny(crit("a", "age_years + 1")))[0]
    assert "cannot be evaluated" in problems(tiny(crit("a", "sex - 3 > 1")))[0]


def test_rule_is_sql_not_python():
    # Python syntax is not SQL: it is refused, never executed
    msg = problems(tiny(crit("a", "__import__('os').system('true')")))
    assert "criterion[0].rule (a)" in msg[0]


def test_parameters_substituted_as_literals_outside_quotes():
    assert substitute("a >= {x} AND s = '{x}'", {"x": 1e4}) == "a >= 10000 AND s = '{x}'"
    assert substitute("s = {v}", {"v": "it's"}) == "s = 'it''s'"


def test_null_meaning_is_applied_and_matrix_is_bool():
    cfg = tiny(crit("inc_fail", "lvef_pct >= 50"), crit("inc_pass", "lvef_pct >= 50", null="pass"),
               crit("exc_fail", "lvef_pct < 50", kind="exclusion"),
               crit("exc_pass", "lvef_pct < 50", kind="exclusion", null="pass"))
    frame = candidates({"lvef_pct": None}, {"lvef_pct": 40.0}, {"lvef_pct": 55.0})
    res = compile_criteria(cfg).evaluate(frame)
    assert res.passes.dtype == bool
    assert res.passes.tolist() == [[False, True, False, True], [False, False, False, False], [True] * 4]


def test_first_failure_looks_at_prescreen_criteria_first():
    cfg = tiny(crit("lab", "hb_g_l >= 90", stage="screening"), crit("age", "age_years <= 65"),
               crit("ecog", "ecog <= 1"))
    res = compile_criteria(cfg).evaluate(
        candidates({"hb_g_l": 80.0, "ecog": 2}, {"hb_g_l": 80.0}, {"ecog": 2, "age_years": 70.0}, {}))
    assert res.ids == ("lab", "age", "ecog")
    assert res.first_failure.tolist() == [2, 0, 1, -1]
    assert res.prescreen_pass.tolist() == [False, True, False, True]
    assert res.eligible.tolist() == [False, False, False, True]


def test_many_criteria_use_several_key_words():
    """More than 64 criteria: the failure-pattern key spans several UInt64 columns."""
    cfg = tiny(*[crit(f"c{i}", f"age_years < {i}") for i in range(130)])
    frame = candidates(*[{"age_years": float(a)} for a in (0.5, 63.5, 64.5, 129.5, 200.0)])
    res = compile_criteria(cfg).evaluate(frame)
    expected = np.array([[a < i for i in range(130)] for a in (0.5, 63.5, 64.5, 129.5, 200.0)])
    assert (res.passes == expected).all()
    fails = ~expected
    assert res.first_failure.tolist() == [int(np.argmax(f)) if f.any() else -1 for f in fails]
    pats = res.patterns
    assert set(map(tuple, pats.fails.tolist())) == set(map(tuple, fails.tolist()))
    assert pats.count.sum() == 5 and len(pats.count) == 4


def test_shortcut_override_key():
    cfg = load_cfg({"crcl_min_ml_min": 50.0})
    assert cfg.values()["crcl_min_ml_min"] == 50.0
    res = compile_criteria(cfg).evaluate(candidates({"crcl_ml_min": 55.0}))
    assert res.eligible.tolist() == [True]


def test_bad_rule_in_scenario_is_refused_at_load_with_file(tmp_path, capsys):
    crit_file = tmp_path / "criteria.toml"
    crit_file.write_text('[[criteria.criterion]]\nid = "crcl"\nkind = "inclusion"\nstage = "screening"\n'
                         'protocol_text = "CCr >= 60"\nrule = "crcl_ml_mn >= 60"\nnull = "fail"\n')
    sc = tmp_path / "s.toml"
    sc.write_text('extends = ["criteria.toml"]\nname = "x"\n[trial]\ntarget_enrolled = 10\n'
                  'start_date = 2023-09-01\ndeadline_months = 12\n')
    assert main(["validate", str(sc)]) == 2
    err = capsys.readouterr().err
    assert 'criteria.toml: criteria.criterion[0].rule (crcl): unknown column "crcl_ml_mn"' in err


def test_evaluate_on_empty_and_lazy_frames(screener):
    empty = candidates({}).clear()
    res = screener.evaluate(empty)
    assert res.passes.shape == (0, len(screener.ids)) and res.first_failure.shape == (0,)
    lazy = screener.evaluate(candidates({}, {"ecog": 3}).lazy())
    assert lazy.eligible.tolist() == [True, False]
    assert isinstance(lazy.matrix_frame(), pl.DataFrame)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 130, 1000])
@pytest.mark.parametrize("k", [1, 8, 63, 64, 65, 130])
def test_failure_words_are_the_bits_of_the_failed_criteria(n, k):
    """Bit j of word c is set iff the row fails column 64c+j, whether packed from polars bitmaps
    (also chunked and sliced frames) or from a numpy matrix; checked against a bit-by-bit sum."""
    from hn005_sim.eligibility.engine import fail_words, pack_failures

    rng = np.random.default_rng(n * 1000 + k)
    passes = rng.random((n, k)) < 0.7
    expected = np.zeros((n, (k + 63) // 64), dtype=np.uint64)
    for j in range(k):
        expected[:, j // 64] += (~passes[:, j]).astype(np.uint64) << np.uint64(j % 64)
    frame = pl.DataFrame({f"c{j}": passes[:, j] for j in range(k)},
                         schema={f"c{j}": pl.Boolean for j in range(k)})
    assert np.array_equal(fail_words(frame), expected)
    assert np.array_equal(pack_failures(passes), expected)
    if n > 3:
        chunked = pl.concat([frame.head(3), frame.slice(3)], rechunk=False)
        assert np.array_equal(fail_words(chunked), expected)
        assert np.array_equal(fail_words(frame.slice(1)), expected[1:])
