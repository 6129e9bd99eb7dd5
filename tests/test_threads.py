"""How many searches a plan runs when it does not say (solver/search/threads.py)."""

from __future__ import annotations

import pytest

from solver.model import Options
from solver.search import PortfolioParams, available_cores, search_threads, threads_for
from solver.search.threads import THREADS_ENV, configured_threads, default_threads, own_load, running_now


@pytest.mark.parametrize(("cores", "load", "own", "expected"), [
    (2, 0.0, 0.0, 2),   # an idle machine: every core
    (2, 0.3, 0.0, 2),   # a little other work: still both
    (2, 1.0, 0.0, 1),   # one core busy elsewhere
    (2, 0.6, 0.0, 1),   # less than half a core free on the second
    (2, 9.0, 0.0, 1),   # a crowded machine: one search, never none
    (2, 2.0, 2.0, 2),   # the load is this process's own two searches
    (8, 3.2, 1.0, 6),   # 2.2 cores of other work on 8
    (1, 0.0, 0.0, 1),
])
def test_threads_are_the_cores_left_by_other_work(cores, load, own, expected):
    assert threads_for(cores, load, own) == expected


def test_work_that_has_ended_since_the_average_does_not_count():
    # a worker's previous plan kept both cores busy for a minute; nothing runs now
    assert threads_for(2, 2.0, running=0.0) == 2
    # other work that still runs counts, however young (the average has not caught up yet)
    assert threads_for(2, 0.2, running=1.0) == 2  # the lower of the two counts
    assert threads_for(2, 1.5, running=1.0) == 1


def test_a_stricter_spare_share_wants_more_of_a_core_free():
    assert threads_for(2, 0.4, spare_share=0.5) == 2
    assert threads_for(2, 0.4, spare_share=0.8) == 1


def test_the_plan_then_the_configuration_then_the_machine_decide(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert configured_threads() == 0  # config/defaults.toml: decided from the machine
    assert search_threads(Options(threads=3)) == 3
    monkeypatch.setenv(THREADS_ENV, "5")
    assert configured_threads() == 5
    assert search_threads(Options()) == 5
    assert search_threads(Options(threads=1)) == 1  # the plan's own setting wins
    monkeypatch.setenv(THREADS_ENV, "-1")
    with pytest.raises(ValueError, match="0 \\(automatic\\)"):
        configured_threads()
    monkeypatch.setenv(THREADS_ENV, "0")
    assert 1 <= search_threads(Options()) <= available_cores()
    assert default_threads(PortfolioParams(load_aware=False)) == available_cores()


def test_this_process_counts_at_most_its_cores_and_not_itself_among_the_running():
    assert 0.0 <= own_load(1) <= 1.0
    running = running_now()
    assert running is not None and running >= 0.0
