"""recruitment/seeding.py against numpy's SeedSequence, key by key (the independent computation)."""

from __future__ import annotations

import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hn005_sim.eligibility.chart import unit_generator
from hn005_sim.recruitment.seeding import generators, pcg64_states
from hn005_sim.recruitment.sites import site_stream, site_streams
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
    for key, g in zip(keys, generators(seed, keys), strict=True):
        r = _reference(seed, key)
        assert g.bit_generator.state == r.bit_generator.state
        assert np.array_equal(g.random(7), r.random(7))
        assert np.array_equal(g.random(5, dtype=np.float32), r.random(5, dtype=np.float32))


def test_seeded_generator_is_a_seed_sequence_for_anything_else():
    g = generators(11, [(3, 1, 4)])[0]
    seq = g.bit_generator.seed_seq
    ref = np.random.SeedSequence(entropy=11, spawn_key=(3, 1, 4))
    assert np.array_equal(seq.generate_state(6), ref.generate_state(6))
    assert np.array_equal(seq.generate_state(3, np.uint64), ref.generate_state(3, np.uint64))
    child, ref_child = seq.spawn(1)[0], ref.spawn(1)[0]
    assert child.spawn_key == ref_child.spawn_key and child.entropy == ref_child.entropy
    assert generators(11, []) == []


def test_site_streams_and_chart_generators_are_the_one_at_a_time_ones():
    wanted = [("arrivals", (0,)), ("population", (2, 5)), ("screening", 7), ("sites", (1, 2))]
    for (name, site), g in zip(wanted, site_streams(11, 4, wanted), strict=True):
        assert np.array_equal(g.random(9), site_stream(11, 4, name, site).random(9))
    for site in (None, 3, (1, 2)):
        key = () if site is None else (site,) if isinstance(site, int) else site
        for unit in ("blood_count", "hbv_dna_copies_ml"):
            g = generators(11, [(4, STREAMS.index("chart"), *key, zlib.crc32(unit.encode()))])[0]
            assert np.array_equal(g.random(9), unit_generator(11, 4, unit, site).random(9))
