"""The per-process cache of compiled criteria (engine.check_config): a second compilation of the same
configuration and column types returns the same compiled rules; any change of what they are compiled
from (a parameter value, a reading, the type of a column a rule reads) compiles again; problems are
never kept; concurrent callers share one compilation."""

from __future__ import annotations

import threading

import polars as pl
import pytest

from hn005_sim.eligibility import compile_criteria, engine
from hn005_sim.eligibility.engine import check_config, declared_columns
from hn005_sim.scenario.errors import ConfigError

from .test_engine import crit, tiny


@pytest.fixture(autouse=True)
def empty_cache():
    engine._compiled_cache.clear()
    yield
    engine._compiled_cache.clear()


def counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = engine._check_config

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(engine, "_check_config", counted)
    return calls


def cfg_with(age_min=18, reading="strict"):
    return tiny(crit("age", "age_years >= {age_min}"),
                {**crit("ecog", ""), "rule": None, "reading": "ecog_cut",
                 "rules": {"strict": "ecog <= 1", "loose": "ecog <= 2"}},
                parameters={"age_min": {"value": age_min, "source": "protocol"}},
                readings={"ecog_cut": reading})


def test_same_config_and_columns_compile_once_and_share_the_rules(monkeypatch):
    calls = counting(monkeypatch)
    a, pa = check_config(cfg_with())
    b, pb = check_config(cfg_with())  # an equal configuration, another object
    assert pa == pb == [] and len(calls) == 1
    assert a is not b and all(x is y for x, y in zip(a, b, strict=True))
    assert [c.sql for c in a] == ["age_years >= 18", "ecog <= 1"]
    # columns no rule reads do not matter: the declared columns and a cohort's share the compilation
    cohort = {"age_years": pl.Float64, "ecog": pl.Int64, "other": pl.String}
    s = compile_criteria(cfg_with(), cohort)
    assert len(calls) == 1 and s.sql == ["age_years >= 18", "ecog <= 1"]
    compile_criteria(cfg_with(), {**cohort, "age_years": pl.Int64})  # a column a rule reads: new type
    assert len(calls) == 2


def test_any_change_of_what_rules_compile_from_compiles_again(monkeypatch):
    calls = counting(monkeypatch)
    assert [c.sql for c in check_config(cfg_with())[0]] == ["age_years >= 18", "ecog <= 1"]
    assert [c.sql for c in check_config(cfg_with(age_min=20))[0]] == ["age_years >= 20", "ecog <= 1"]
    assert [c.sql for c in check_config(cfg_with(reading="loose"))[0]] == ["age_years >= 18", "ecog <= 2"]
    # 18.0 is another configuration (its JSON differs), compiled again though its rule text is the same
    assert check_config(cfg_with(age_min=18.0))[0][0].sql == "age_years >= 18"
    assert len(calls) == 4
    # a column a rule reads changes type: compiled again, and its problem reported
    cols = {**declared_columns(cfg_with()), "age_years": pl.String}
    _, problems = check_config(cfg_with(), cols)
    assert len(calls) == 5 and any("age" in str(p) for p in problems)


def test_problems_are_not_kept_and_name_each_callers_file(monkeypatch):
    calls = counting(monkeypatch)
    bad = tiny(crit("a", "age_yers > 1"))
    for file in ("one.toml", "two.toml"):
        with pytest.raises(ConfigError) as exc:
            compile_criteria(bad, file=file)
        assert str(exc.value.problems[0]).startswith(f"{file}: ")
    assert len(calls) == 2 and not engine._compiled_cache


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(engine, "COMPILED_CACHE_SIZE", 3)
    for v in range(18, 24):
        check_config(cfg_with(age_min=v))
    assert len(engine._compiled_cache) == 3


def test_concurrent_callers_share_one_compilation(monkeypatch):
    calls = counting(monkeypatch)
    out: list = [None] * 4
    start = threading.Barrier(4)

    def work(i):
        start.wait()
        out[i] = check_config(cfg_with())[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(all(x is y for x, y in zip(out[0], o, strict=True)) for o in out)
