"""The day benchmark's generator: every day it makes comes with a witness
plan that serves every visit and that the independent checker accepts, and
the witness really is tight (it is not a day any plan could serve at ease)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from solver.geo.network import RoadNetwork
from solver.geo.synthetic import synthetic_city
from solver.model import Problem

BENCH = Path(__file__).resolve().parents[1] / "bench" / "day.py"


@pytest.fixture(scope="module")
def day_module():
    spec = importlib.util.spec_from_file_location("bench_day", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_day"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_day(day_module, warm_map):  # the kernels: compiled by the warm-up, not here beside it
    city = synthetic_city(40, seed=3)
    network = RoadNetwork(city.graph)
    payload, witness = day_module.make_day(city, network, 60, 4, seed=3, time_limit=5)
    return Problem.model_validate(payload), witness, network


def test_witness_serves_every_visit_and_passes_the_checker(day_module, small_day):
    problem, witness, network = small_day
    assert len(problem.visits) == 60
    planned = [v for seq in witness.values() for v in seq]
    assert sorted(planned) == sorted(v.id for v in problem.visits)  # each visit exactly once
    report = day_module.check_witness(problem, network, witness)
    assert report.ok, report


def test_witness_check_catches_a_broken_witness(day_module, small_day):
    problem, witness, network = small_day
    crews = sorted(witness)
    # every visit on one crew: its shift cannot hold them all
    overloaded = {c: [] for c in crews}
    overloaded[crews[0]] = [v for c in crews for v in witness[c]]
    try:
        report = day_module.check_witness(problem, network, overloaded)
    except SystemExit:  # the route does not even time
        return
    assert not report.ok


def test_day_mixes_windows_appointments_and_modes(small_day):
    problem, _, _ = small_day
    assert any(v.appointment for v in problem.visits) or len(problem.visits) < 40
    assert any(v.addresses[0].time_windows for v in problem.visits)
    assert any(not v.addresses[0].time_windows and not v.appointment for v in problem.visits)
    assert {a.travel_mode for a in problem.agents} == {"drive", "ebike"}
