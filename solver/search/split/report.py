"""Where the wall time of a split day went: :class:`SplitReport`.

:func:`solver.search.split.solve_split` fills one in (the split, the parts,
the merge, the border polish) and so does whoever solves the parts (where
each part was solved, how long it waited to start); :meth:`SplitReport.describe`
says it in one line, for the plan's solver stats and the job log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SplitReport"]


@dataclass
class SplitReport:
    """Wall-clock seconds of each phase of a split day.

    Parameters
    ----------
    budget_s
        The day's time limit: the wall-clock budget of the whole split.
    before_s
        Spent before the split started (the job's start-up: loading the
        travel model, reading the problem).
    split_s, parts_s, merge_s, polish_s
        The phases, in order: splitting, solving the parts (from the
        first part handed out to the last plan back), merging, the border
        polish.
    windows_tried, windows_improved
        Border windows re-planned, and those that made the plan better.
    where
        Where each part was solved, by part index: ``"worker"`` (an RQ
        job), ``"inline"`` (this process), ``"fallback"`` (here, after it
        failed on a worker); a part absent was lost.
    queued_s
        Per part: from handing it out to a process starting on it.
    part_s, matrix_s
        Per part: its solve's wall time (travel matrices included), and of
        that the travel matrices.
    """

    budget_s: float = 0.0
    before_s: float = 0.0
    split_s: float = 0.0
    parts_s: float = 0.0
    merge_s: float = 0.0
    polish_s: float = 0.0
    windows_tried: int = 0
    windows_improved: int = 0
    where: dict[int, str] = field(default_factory=dict)
    queued_s: dict[int, float] = field(default_factory=dict)
    part_s: dict[int, float] = field(default_factory=dict)
    matrix_s: dict[int, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        """The phases together, start-up included."""
        return self.before_s + self.split_s + self.parts_s + self.merge_s + self.polish_s

    def describe(self) -> str:
        """One line: the phases, then each part (where; queued, matrices, solve)."""
        parts = "; ".join(
            f"{k} {self.where.get(k, 'lost')}: queued {self.queued_s.get(k, 0.0):.1f} s, "
            f"matrices {self.matrix_s.get(k, 0.0):.1f} s, solve {self.part_s.get(k, 0.0):.1f} s"
            for k in sorted(set(self.where) | set(self.part_s))
        )
        return (f"wall {self.total_s:.1f} s of a {self.budget_s:.0f} s budget: start-up {self.before_s:.1f} s, "
                f"split {self.split_s:.1f} s, parts {self.parts_s:.1f} s [{parts}], merge {self.merge_s:.1f} s, "
                f"border polish {self.polish_s:.1f} s ({self.windows_tried} windows, "
                f"{self.windows_improved} improved)")
