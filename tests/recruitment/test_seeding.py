"""recruitment/seeding.py against numpy's SeedSequence, key by key (the independent computation)."""

from __future__ import annotations

import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hn005_sim.eligibility.chart import unit_generator
from hn005_sim.recruitment.seeding import FEW, generators, pcg64_states
from hn005_sim.recruitment.sites import site_stream
from hn005_sim.rng import STREAMS

words = st.integers(min_value=0, max_value=2**32 - 1)
big = st.integers(min_value=0, max_value=2**80)


def _reference(seed, key):
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=key)))


@settings(max_examples=60, deadline=None)
@given(seed=st.one_of(words, big),
       keys=st.lists(st.lists(st.one_of(words, words, big), min_size=0, max_size=7).map(tuple),
                     min_size=1, max_size=12))
def test_states_and_draws_equal_seed_sequence(seed, keys):
    states = pcg64_states(seed, keys)
    ref = np.array([np.random.SeedSequence(entropy=seed, spawn_key=k).generate_state(4, np.uint64)
                    for k in keys])
    assert np.array_equal(states, ref)
    keys = keys * (FEW // len(keys) + 1)  # enough keys for the hash on arrays (fewer: one at a time)
    for key, g in zip(keys, generators(seed, keys), strict=True):
        r = _reference(seed, key)
        assert g.bit_generator.state == r.bit_generator.state
        assert np.array_equal(g.random(7), r.random(7))
        assert np.array_equal(g.random(5, dtype=np.float32), r.random(5, dtype=np.float32))


def test_seeded_generator_is_a_seed_sequence_for_anything_else():
    g = generators(11, [(3, 1, 4)] * FEW)[0]
    seq = g.bit_generator.seed_seq
    assert type(seq).__name__ == "_Seeded"  # the hash on arrays made it
    ref = np.random.SeedSequence(entropy=11, spawn_key=(3, 1, 4))
    assert np.array_equal(seq.generate_state(6), ref.generate_state(6))
    assert np.array_equal(seq.generate_state(3, np.uint64), ref.generate_state(3, np.uint64))
    child, ref_child = seq.spawn(1)[0], ref.spawn(1)[0]
    assert child.spawn_key == ref_child.spawn_key and child.entropy == ref_child.entropy
    # PCG64's own request (4, np.uint64) gets the precomputed words, read-only; a copy for any other
    # spelling of the same request; either way the words SeedSequence gives
    words4 = seq.generate_state(4, np.uint64)
    assert np.array_equal(words4, ref.generate_state(4, np.uint64)) and not words4.flags.writeable
    other = seq.generate_state(4, "uint64")
    assert np.array_equal(other, words4) and other.flags.writeable
    assert generators(11, []) == []
    few = generators(11, [(3, 1, 4)])[0]  # one at a time below FEW keys: the same generator
    assert few.bit_generator.state == np.random.Generator(np.random.PCG64(ref)).bit_generator.state


def test_a_groups_streams_and_chart_generators_are_the_one_at_a_time_ones():
    """des._seed (a worker's replicates seeded together) against site_stream and unit_generator."""
    from pathlib import Path

    from hn005_sim.recruitment import des
    from hn005_sim.recruitment.candidates import candidate_source
    from hn005_sim.recruitment.sites import draw_sites
    from hn005_sim.scenario.load import load_scenario

    sc, _ = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "network_south_china.toml")
    source = candidate_source(sc)
    group = [(r, draw_sites(sc.recruitment, 11, r)) for r in (4, 9)]
    for (r, sites), (streams, charts) in zip(group, des._seed(source, 11, group), strict=True):
        assert len(streams) == 3 * len(sites) and len(charts) == len(sites) > 1
        for i, site in enumerate(sites):
            mine = streams[3 * i:3 * i + 3]
            for name, g in zip(("arrivals", "population", "screening"), mine, strict=True):
                assert np.array_equal(g.random(9), site_stream(11, r, name, site.stream_key).random(9))
            units = source._chart.units
            assert len(charts[i]) == len(units)
            for unit, g in zip(units, charts[i], strict=True):
                assert np.array_equal(g.random(9), unit_generator(11, r, unit, site.stream_key).random(9))
    for site in (None, 3, (1, 2)):  # the chart's keys, as unit_generator makes them
        key = () if site is None else (site,) if isinstance(site, int) else site
        for unit in ("blood_count", "hbv_dna_copies_ml"):
            g = generators(11, [(4, STREAMS.index("chart"), *key, zlib.crc32(unit.encode()))] * FEW)[0]
            assert np.array_equal(g.random(9), unit_generator(11, 4, unit, site).random(9))
