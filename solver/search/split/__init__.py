"""Days past one process: split into parts, solved anywhere, merged, polished.

A day above :attr:`SplitParams.split_above` visits is cut into *parts*
(:func:`split_problem`): the crews are bisected by where they start
(recursive coordinate bisection, so every part gets about as many crews and
its crews are neighbours), then each visit, most important first, goes to the
part whose nearest crew start is closest and which still has room (room in
proportion to the part's crews), among parts holding a crew able to make it
(pinned crew, skills, crew size). Every visit and every crew belongs to
exactly one part. A part is a :class:`~solver.model.Problem` of its own, so
it can be solved by :func:`solver.solve` in this process or in another one
(an RQ job on any machine: :mod:`app.jobs.split`); the caller decides by
passing ``solve_parts`` to :func:`solve_split`.

The problem's time limit is a wall-clock budget for the whole split day,
from when its job started (:func:`solve_split`): the split itself, then the
parts get what remains but :attr:`SplitParams.polish_share` of the limit,
as a *deadline* (a part queued behind others starts later and still ends in
time: it computes its travel matrices first and searches for what is left,
:func:`solve_part`); the merge and the border polish have the rest, and the
polish stops at the deadline (or, like every search of the day, after the
day's ``max_iterations`` iterations per window when its options ask for it).

The part plans are merged (:func:`merge_plans`); a part that could not be
solved leaves its crews idle and its visits unassigned with a reason. Then
the borders are polished (:func:`polish_borders`) until the deadline: for each pair of
neighbouring parts, a *window* of the crews of either side whose routes lie
closest to the other side, with their visits and the visits either part left
out, is compiled as a small problem of its own (no travel matrix of the whole
day is ever built), left-out visits are inserted with any of its crews
(:func:`solver.search.insert_dropped`) and ruin and recreate
(:func:`solver.search.polish`) moves visits across the border. A window's new
routes replace the old ones only when the independent checker accepts them
and they serve at least the same priority.

No Flask, no RQ: pure functions on problems and plans. One job a module:
:mod:`~.params` (:class:`SplitParams`), :mod:`~.part` (:class:`Part`),
:mod:`~.partition` (the split), :mod:`~.parts` (solving parts),
:mod:`~.merge`, :mod:`~.border` (the polish), :mod:`~.day`
(:func:`solve_split`) and :mod:`~.report` (:class:`SplitReport`).
"""

from solver.search.split.border import DROPPED_CODES, polish_borders
from solver.search.split.day import solve_split
from solver.search.split.merge import merge_plans
from solver.search.split.params import SplitParams
from solver.search.split.part import Part, SolveParts
from solver.search.split.partition import needs_split, part_count, split_problem
from solver.search.split.parts import solve_part, solve_parts_inline
from solver.search.split.report import SplitReport

__all__ = [
    "DROPPED_CODES",
    "Part",
    "SolveParts",
    "SplitParams",
    "SplitReport",
    "merge_plans",
    "needs_split",
    "part_count",
    "polish_borders",
    "solve_part",
    "solve_parts_inline",
    "solve_split",
    "split_problem",
]
