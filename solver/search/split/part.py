"""One part of a split day (:class:`Part`) and the signature of whoever
solves the parts (:data:`SolveParts`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from solver.model import Plan, Problem

__all__ = ["Part", "SolveParts"]


@dataclass
class Part:
    """One part of a split day: its own problem, and where it came from."""

    index: int
    problem: Problem
    visit_ids: list[str]
    agent_ids: list[str]


#: ``solve_parts(parts, deadline, end)``: a plan per part, in order (None: the
#: part could not be solved), all of them made by ``deadline`` (``time.time()``);
#: a part late for it is still worth waiting for until ``end``, the end of the
#: day's budget (the border polish then has less time).
SolveParts = Callable[[Sequence[Part], float, float], list[Plan | None]]

