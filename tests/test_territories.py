"""Large days are decomposed into territories around the crews' start places."""

from __future__ import annotations

import random

from solver import solve
from solver.check import check_plan
from solver.territories import DECOMPOSE_ABOVE, _territories
from solver.compile import compile_problem
from tests.factories import PLANE, crew, problem, visit


def test_a_large_day_is_planned_by_territory_and_checks_out():
    rng = random.Random(3)
    centres = [(-40, 0), (0, 0), (40, 0)]
    visits = []
    for i in range(DECOMPOSE_ABOVE + 30):
        cx, cy = centres[i % 3]
        visits.append(visit(f"v{i}", cx + rng.uniform(-6, 6), cy + rng.uniform(-6, 6), duration_min=10,
                            priority=rng.randint(0, 100)))
    crews = [crew(f"c{k}", x=centres[k % 3][0], y=centres[k % 3][1], shift=("08:00", "17:00"))
             for k in range(12)]
    p = problem(visits, crews, time_limit_s=6, slot_minutes=0)
    data = compile_problem(p, PLANE)
    groups = _territories(data)
    assert len(groups) == 2  # three start places merged down to about 150 visits each
    plan = solve(p, PLANE)
    check_plan(p, plan, PLANE).raise_if_invalid()
    assert "territories" in plan.solver.first_solution
    # every crew works near its own start: no route crosses to the far centre
    for route in plan.routes:
        for stop in route.stops:
            assert abs(stop.location.lon - route.start_location.lon) < 45
    assert plan.summary.visits_planned >= 0.8 * len(visits)
