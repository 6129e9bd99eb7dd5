"""Big days in parts (solver.search.split, app.jobs.split): the split covers
every visit and crew once, the merged plan passes the independent checker and
serves about what a plain solve serves, and plan jobs past ``split_above``
are solved in parts by real `doorstep worker` processes on the test Redis —
with one worker too (the parent solves its queued parts itself)."""

from __future__ import annotations

import random
import subprocess
import time
from typing import Any

import pytest

from solver import solve
from solver.check import check_plan
from solver.model import Plan, Problem
from solver.search.split import (
    SplitParams,
    SplitReport,
    merge_plans,
    polish_borders,
    solve_part,
    solve_parts_inline,
    solve_split,
    split_problem,
)
from solver.travel import StraightLineTravel
from tests.conftest import REDIS_URL
from tests.factories import MAX_ITERATIONS
from tests.rqworkers import drop_queue, start_worker, stop_workers

BRANCHES = [(31.205, 121.445), (31.205, 121.495), (31.255, 121.445), (31.255, 121.495)]


def easy_day(visits: int, crews: int, seed: int = 5, time_limit_s: float = 2.0) -> dict[str, Any]:
    """A day around four branches in central Shanghai that its crews can
    serve at ease: short visits, open or half-day windows, a few pinned
    visits and a skill only some crews hold."""
    rng = random.Random(seed)
    visit_list = []
    for i in range(visits):
        windows = rng.choice([[], [{"start": "09:00", "end": "12:30"}], [{"start": "13:00", "end": "17:30"}]])
        visit: dict[str, Any] = {
            "id": f"v{i:03d}", "priority": rng.randint(0, 100), "duration_min": 15,
            "addresses": [{"text": f"Road {i}", "time_windows": windows,
                           "location": {"lat": rng.uniform(31.2, 31.26), "lon": rng.uniform(121.44, 121.5)}}],
        }
        if i % 17 == 0:
            visit["skills"] = ["legal"]
        if i % 23 == 5:
            visit["pinned_agent"] = f"crew-{i % crews:02d}"
        visit_list.append(visit)
    agents = [{
        "id": f"crew-{k:02d}", "members": [f"A{k}a", f"A{k}b"], "shift": {"start": "08:30", "end": "18:00"},
        "start": {"text": f"Branch {k % 4}", "location": {"lat": BRANCHES[k % 4][0], "lon": BRANCHES[k % 4][1]}},
        "skills": ["legal"] if k % 3 == 0 else [], "max_visits": 14,
    } for k in range(crews)]
    return {"date": "2026-12-01", "timezone": "Asia/Shanghai", "visits": visit_list, "agents": agents,
            "options": {"time_limit_s": time_limit_s, "max_iterations": MAX_ITERATIONS}}


def test_split_covers_every_visit_and_crew_once_in_balanced_parts():
    problem = Problem.model_validate(easy_day(300, 24))
    parts = split_problem(problem, SplitParams(split_above=100, part_visits=80))
    assert len(parts) == 4
    visit_ids = [v for p in parts for v in p.visit_ids]
    agent_ids = [a for p in parts for a in p.agent_ids]
    assert sorted(visit_ids) == sorted(v.id for v in problem.visits)  # each exactly once
    assert sorted(agent_ids) == sorted(a.id for a in problem.agents)
    assert all(len(p.agent_ids) == 6 for p in parts)  # crews shared out evenly
    assert max(len(p.visit_ids) for p in parts) <= 300 / 4 * 1.05 + 1  # visits in proportion to crews
    for part in parts:  # a part's problem is the part: its own visits and crews
        assert [v.id for v in part.problem.visits] == part.visit_ids
        assert [a.id for a in part.problem.agents] == part.agent_ids
        crews = {a.id: a for a in part.problem.agents}
        for visit in part.problem.visits:  # a visit goes where a crew can make it
            if visit.pinned_agent:
                assert visit.pinned_agent in crews
            if visit.skills:
                assert any("legal" in a.skills for a in crews.values())


def test_solvers_round_the_parts_up():
    problem = Problem.model_validate(easy_day(300, 24))
    assert len(split_problem(problem, SplitParams(split_above=100, part_visits=100, solvers=2))) == 4
    assert len(split_problem(problem, SplitParams(split_above=100, part_visits=100, solvers=1))) == 3


def test_split_plan_is_valid_and_serves_about_what_a_plain_solve_serves():
    travel = StraightLineTravel()
    problem = Problem.model_validate(easy_day(160, 16, time_limit_s=3.0))
    plain = solve(problem, travel)
    report = SplitReport()
    plan = solve_split(problem, travel, params=SplitParams(split_above=60, part_visits=60), report=report)
    assert plan.solver.first_solution == "split into 3 parts"
    # where the time went: every part solved here, its solve timed, the budget the time limit
    assert report.where == {0: "inline", 1: "inline", 2: "inline"} and set(report.part_s) == {0, 1, 2}
    assert report.budget_s == 3.0 and "2 inline: queued" in report.describe()
    report = check_plan(problem, plan, travel)
    assert report.ok, report
    planned = [s.visit_id for r in plan.routes for s in r.stops]
    assert len(planned) == len(set(planned))
    assert sorted(planned + [u.visit_id for u in plan.unassigned]) == sorted(v.id for v in problem.visits)
    assert [r.agent_id for r in plan.routes] == [a.id for a in problem.agents]
    assert plan.summary.visits_planned >= plain.summary.visits_planned - 0.03 * len(problem.visits)


def test_border_polish_keeps_the_plan_valid_and_never_worse():
    travel = StraightLineTravel()
    problem = Problem.model_validate(easy_day(160, 12, time_limit_s=1.0))
    params = SplitParams(split_above=60, part_visits=60, border_crews=4, min_window_s=2.0)
    parts = split_problem(problem, params)
    merged = merge_plans(problem, parts, solve_parts_inline(travel, params=params)(parts, time.time() + 2.0), travel)
    plan, tried, improved = polish_borders(problem, merged, parts, travel, time.time() + 6.0, params)
    assert tried >= improved
    assert check_plan(problem, plan, travel).ok
    before, after = merged.summary, plan.summary
    assert (after.priority_planned, after.visits_planned) >= (before.priority_planned, before.visits_planned)
    assert improved > 0  # a window is kept only when it serves more priority, more visits or travels less
    assert (after.priority_planned, after.visits_planned, -after.travel_s) > \
            (before.priority_planned, before.visits_planned, -before.travel_s)
    planned = [s.visit_id for r in plan.routes for s in r.stops]
    assert sorted(planned + [u.visit_id for u in plan.unassigned]) == sorted(v.id for v in problem.visits)


def test_the_polish_stops_at_the_deadline():
    travel = StraightLineTravel()
    problem = Problem.model_validate(easy_day(160, 12, time_limit_s=1.0))
    params = SplitParams(split_above=60, part_visits=60, border_crews=4, min_window_s=2.0, min_part_s=1.0)
    parts = split_problem(problem, params)
    merged = merge_plans(problem, parts, solve_parts_inline(travel, params=params)(parts, time.time() + 2.0), travel)
    plan, tried, improved = polish_borders(problem, merged, parts, travel, time.time() + 1.0, params)
    assert (tried, improved) == (0, 0) and plan is merged  # less than a window's time left: nothing tried


def test_a_part_past_its_deadline_still_gets_a_short_search():
    travel = StraightLineTravel()
    problem = Problem.model_validate(easy_day(40, 4))
    plan = solve_part(problem, time.time() - 30.0, travel, params=SplitParams(min_part_s=1.0))
    assert plan is not None and check_plan(problem, plan, travel).ok
    assert plan.summary.visits_planned > 0  # a late plan beats none


def test_a_lost_part_leaves_its_visits_unassigned_and_its_crews_idle():
    travel = StraightLineTravel()
    body = easy_day(90, 8)
    for visit in body["visits"][::9]:
        visit["required"] = True
    problem = Problem.model_validate(body)
    parts = split_problem(problem, SplitParams(split_above=40, part_visits=45))
    plans: list[Plan | None] = [solve(parts[0].problem, travel), None]
    plan = merge_plans(problem, parts, plans, travel)
    assert check_plan(problem, plan, travel).ok
    lost = {u.visit_id: u for u in plan.unassigned if u.details.get("part") == 1}
    assert set(lost) == set(parts[1].visit_ids) and "could not be solved" in next(iter(lost.values())).reason
    assert all(not plan.route(a).stops for a in parts[1].agent_ids)
    assert plan.solver.status == "partial"
    required = [v.id for v in parts[1].problem.visits if v.required]
    assert required and all(lost[vid].code == "required_infeasible" for vid in required)  # not "lower priority"


# --------------------------------------------------------------------------- #
# Plan jobs in parts
# --------------------------------------------------------------------------- #
@pytest.fixture
def split_env(monkeypatch):
    """Days past 40 visits split into parts of at most 30 (job processes and workers read the environment)."""
    monkeypatch.setenv("DOORSTEP_JOBS_SPLIT_ABOVE", "40")
    monkeypatch.setenv("DOORSTEP_JOBS_SPLIT_PART_VISITS", "30")


@pytest.fixture
def workers(make_app, tmp_path, split_env):
    """An RQ app and a starter of real `doorstep worker` processes on its queue."""
    app = make_app(redis=True, JOBS="rq", HEARTBEAT_TIMEOUT_S=10)
    procs: list[subprocess.Popen] = []

    def start(count: int) -> None:
        from rq import Queue, Worker

        cfg = app.config
        for k in range(count):
            procs.append(start_worker(cfg, tmp_path / f"worker-{k}.log"))
        queue = Queue(cfg["RQ_QUEUE"], connection=app.extensions["doorstep"].jobs.queue.connection)
        deadline = time.monotonic() + 30
        while Worker.count(connection=queue.connection, queue=queue) < count and time.monotonic() < deadline:
            time.sleep(0.1)

    yield app, start
    stop_workers(procs, timeout_s=15)
    drop_queue(app.config["RQ_QUEUE"])


def _plan_job(app, body: dict[str, Any], timeout_s: float = 90.0) -> tuple[dict[str, Any], Plan]:
    client = app.test_client()
    response = client.post("/v1/plans", json=body)
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["job_id"]
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/jobs/{job_id}").get_json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    stored = app.extensions["doorstep"].store.get_plan(body["date"], job["version"])
    return job, Plan.model_validate_json(stored.plan_json)


def _check(body: dict[str, Any], plan: Plan) -> None:
    problem = Problem.model_validate(body)
    report = check_plan(problem, plan, StraightLineTravel())
    assert report.ok, report
    assert sorted([s.visit_id for r in plan.routes for s in r.stops] + [u.visit_id for u in plan.unassigned]) == \
        sorted(v.id for v in problem.visits)
    assert plan.summary.visits_planned >= 0.9 * len(problem.visits)


def test_workers_solve_the_parts_of_a_split_job(workers):
    app, start = workers
    start(2)
    body = easy_day(80, 8, time_limit_s=1.0)
    _job, plan = _plan_job(app, body)
    # 2 workers: 3 parts of at most 30 visits, rounded up to 4; the idle worker takes parts off the queue
    assert plan.solver.first_solution.startswith("split into 4 parts (")
    assert "worker" in plan.solver.first_solution
    _check(body, plan)


def test_one_worker_solves_its_own_parts_without_deadlock(workers):
    app, start = workers
    start(1)
    body = easy_day(80, 8, time_limit_s=1.0)
    _job, plan = _plan_job(app, body)
    assert plan.solver.first_solution.startswith("split into 3 parts (inline, inline, inline); wall ")
    _check(body, plan)


def test_embedded_jobs_solve_the_parts_in_their_process(make_app, split_env):
    app = make_app()
    body = easy_day(80, 8, time_limit_s=1.0)
    _job, plan = _plan_job(app, body)
    assert plan.solver.first_solution.startswith("split into 3 parts; wall ")
    _check(body, plan)


def test_split_days_have_their_own_size_limits(make_app, split_env, monkeypatch):
    monkeypatch.setenv("DOORSTEP_JOBS_MAX_VISITS", "50")
    monkeypatch.setenv("DOORSTEP_JOBS_MAX_SPLIT_VISITS", "70")
    client = make_app().test_client()
    response = client.post("/v1/plans", json=easy_day(80, 8))
    assert response.status_code == 413
    text = response.get_data(as_text=True)
    assert "visits" in text and "70" in text  # the split days' limit, not max_visits
    assert client.post("/v1/plans", json=easy_day(60, 8)).status_code == 202  # past split_above: up to 70


def test_a_part_failing_on_its_worker_is_solved_again_by_the_parent(workers):
    from app.jobs.rq import rq_connection
    from app.jobs.split import RQParts

    app, start = workers
    start(1)
    travel = StraightLineTravel()
    problem = Problem.model_validate(easy_day(60, 6, time_limit_s=1.0))
    parts = split_problem(problem, SplitParams(split_above=40, part_visits=30))
    # the worker cannot build this travel model, so its part fails there; the parent's own model works
    solver_here = RQParts(rq_connection(REDIS_URL), app.config["RQ_QUEUE"], parent="test-parent",
                          travel_name="tests.no_such_module:travel", travel=travel)
    plans = solver_here(parts, time.time() + 4.0)
    assert solver_here.where == {0: "fallback", 1: "inline"}
    assert all(plan is not None for plan in plans)
    plan = merge_plans(problem, parts, plans, travel)
    assert check_plan(problem, plan, travel).ok
