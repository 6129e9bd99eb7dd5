"""Tuning of a split day: :class:`SplitParams`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SplitParams"]


@dataclass(frozen=True)
class SplitParams:
    """Tuning of a split day.

    Parameters
    ----------
    split_above
        Days with more visits than this are split (0: never).
    part_visits
        Most visits per part; the number of parts is the visits over this,
        rounded up, then up to a multiple of ``solvers``.
    solvers
        Parts solved at the same time (workers); parts beyond it wait, so
        each part's time limit shrinks by the rounds needed.
    polish_share
        Share of the time limit kept for the merge and the border polish
        after the parts (the parts have the rest of the budget).
    border_crews
        Crews of each side in a border window.
    window_dropped
        Most left-out visits offered to a border window (nearest its crews).
    room_slack
        A part takes up to this factor of its fair share of visits before
        the next nearest part is tried.
    min_window_s
        A border window gets at least this many seconds, or is skipped.
    min_search_s
        A window's search gets at least this many seconds after compiling
        it, or the window is given up.
    check_share
        Time kept after a window's search for timing and checking its
        routes, as a share of the time its compiling took (both price
        travel between its points).
    min_part_s
        A part searches at least this long, even when its deadline is
        nearer (a loaded machine): a late plan beats none.
    part_margin_s
        A part stops searching this long before its deadline, to build its
        plan (timing its routes and cutting slots: seconds for 1,300 visits)
        and send it back.
    search_share
        A part's search is given this share of the time left after its
        travel matrices: the search of a big part overruns its limit on a
        loaded machine (by a quarter at load 13 on 2 cores).
    """

    split_above: int = 1500
    part_visits: int = 1250
    solvers: int = 1
    polish_share: float = 0.15
    border_crews: int = 15
    window_dropped: int = 150
    room_slack: float = 1.05
    min_window_s: float = 4.0
    min_search_s: float = 2.0
    check_share: float = 0.6
    min_part_s: float = 3.0
    part_margin_s: float = 5.0
    search_share: float = 0.75

