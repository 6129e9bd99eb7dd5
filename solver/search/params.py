"""Tuning of the searches, as parameter dataclasses passed in.

:class:`SearchParams` bundles what :func:`solver.search.search`,
:func:`solver.search.search_by_territory` and :func:`solver.solve.solve`
need: the OR-Tools model (:class:`ModelParams`), the ruin and recreate
around it (:class:`RuinRecreateParams`), the decomposition of large days
(:class:`TerritoryParams`) and PyVRP's search
(:class:`~solver.search.ils.IlsParams`,
:class:`~solver.search.portfolio.PortfolioParams`). The defaults are the
product's; tests and benchmarks pass others (``dataclasses.replace``), e.g.
:meth:`SearchParams.stopping_after` to end every search after a number of
iterations instead of waiting out its time limit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from solver.search.ils import IlsParams
from solver.search.portfolio import PortfolioParams

if TYPE_CHECKING:
    from solver.model import Options

#: OR-Tools' large-neighbourhood operators, off in the light descents.
HEAVY_OPERATORS = (
    "use_global_cheapest_insertion_path_lns",
    "use_local_cheapest_insertion_path_lns",
    "use_relocate_path_global_cheapest_insertion_insert_unperformed",
    "use_global_cheapest_insertion_visit_types_lns",
    "use_local_cheapest_insertion_visit_types_lns",
    "use_shortest_path_swap_active",
    "use_shortest_path_two_opt",
    "use_swap_active_chain",
    "use_make_chain_inactive",
    "use_relocate_expensive_chain",
    "use_lin_kernighan",
)


@dataclass(frozen=True)
class ModelParams:
    """Tuning of the OR-Tools model (:func:`solver.search.ortools_model.build_model`)
    and of its guided local search.

    Parameters
    ----------
    balance_visit_cost_s
        Workload balance ``visits``: cost of each visit above a crew's fair
        share (seconds of travel).
    balance_time_cost
        Workload balance ``time``: cost of each second of work above a
        crew's fair share.
    stability_matrix_limit
        Largest nodes² × crews for which re-plans price stability per crew
        (above it, the warm start only).
    solution_limit
        Stop OR-Tools' guided local search (re-plans warm-started from the
        previous routes, budgets under a second) after this many solutions;
        ``None``: at the time limit only.
    """

    balance_visit_cost_s: int = 1200
    balance_time_cost: int = 2
    stability_matrix_limit: int = 30_000_000
    solution_limit: int | None = None


@dataclass(frozen=True)
class RuinRecreateParams:
    """Tuning of the ruin and recreate around OR-Tools
    (:class:`solver.search.ruin_recreate.RuinAndRecreate`).

    Parameters
    ----------
    route_ruin_probability
        Chance that a ruin empties a short route instead of a cluster or
        strings of visits.
    cluster_ruin_until
        A ruin draws a number in [0, 1): below ``route_ruin_probability`` it
        empties a route, below this it removes the visits nearest a seed,
        else it cuts strings from the routes passing nearest.
    ruin_share
        Largest ruin, as a share of the visits ...
    ruin_max
        ... and at most this many visits.
    ruin_min
        ... and at least this many (a ruin takes half of it to all of it).
    string_routes
        Routes a string ruin cuts at most.
    string_max
        Longest string a string ruin cuts.
    light_operators
        The descents (after the first solution and after each ruin) skip
        OR-Tools' slow large-neighbourhood operators (:data:`HEAVY_OPERATORS`):
        3.5 times as many iterations in the same time on Solomon instances.
    heavy_operators
        The operators a light descent turns off.
    heavy_share
        Share of the repairs made with OR-Tools' full operator set.
    accept_threshold
        Record-to-record acceptance: a worse solution within this share of
        the best cost may become the current one (the share shrinks to zero
        over the budget).
    scope_visits
        Repairs in a sub-model take the ruined routes and the routes nearest
        the ruin, added until they hold about this many visits (a descent
        over 200 visits takes ten times as long as one over 60).
    scope_empty_crews
        Empty crews (nearest the ruin first) a sub-model repair may open a
        route with.
    whole_share
        While visits are left out, share of the repairs made on the whole
        day: a left-out visit may fit only a crew far from it (skills, crew
        size, pinning), which no sub-model around it holds.
    whole_max_visits
        ... on days of at most this many visits: above it a whole-day repair
        costs more than it brings (on the ~150-visit territories of
        ``bench/day.py`` travel rose 5 % on two seeds; on the 100-visit demo
        day the objective fell 28 %, mean of three seeds).
    repair_limit_s
        Time limit of one repair's descent.
    min_remaining_s
        No repair starts with less of the budget left.
    max_iterations
        Stop after this many iterations (ruins and repairs), before the
        budget is spent; ``None``: at the budget only.
    """

    route_ruin_probability: float = 0.15
    cluster_ruin_until: float = 0.6
    ruin_share: float = 0.3
    ruin_max: int = 20
    ruin_min: int = 4
    string_routes: int = 3
    string_max: int = 10
    light_operators: bool = True
    heavy_operators: tuple[str, ...] = HEAVY_OPERATORS
    heavy_share: float = 0.3
    accept_threshold: float = 0.01
    scope_visits: int = 60
    scope_empty_crews: int = 1
    whole_share: float = 0.2
    whole_max_visits: int = 120
    repair_limit_s: float = 1.0
    min_remaining_s: float = 0.05
    max_iterations: int | None = None


@dataclass(frozen=True)
class TerritoryParams:
    """Tuning of the decomposition of large days
    (:func:`solver.search.territories.search_by_territory`).

    Parameters
    ----------
    visits_per_territory
        A territory is sized for about this many visits.
    decompose_above
        Days (that PyVRP cannot express) with more visits than this are
        decomposed, when they have more than one crew.
    cross_insert_share
        Share of the search's time limit kept for placing, across
        territories, the visits a territory had to leave out.
    cross_insert_crews
        Crews examined per left-out visit (those whose routes pass closest).
    polish_share
        Share of the search's time limit given to ruin and recreate across
        the whole day after the territories (:func:`solver.search.polish`):
        repairs there may move visits between crews of neighbouring
        territories.
    """

    visits_per_territory: int = 150
    decompose_above: int = 250
    cross_insert_share: float = 0.05
    cross_insert_crews: int = 12
    polish_share: float = 0.2


@dataclass(frozen=True)
class HybridParams:
    """Tuning of :func:`solver.search.hybrid.hybrid_search`.

    Parameters
    ----------
    enabled
        Whether :func:`solver.search.search` tries the hybrid at all.
    break_point
        Where each break is pinned in the relaxation: 0 at its window's
        opening, 1 at the latest start its window allows.
    search_share
        Share of the budget PyVRP searches the relaxation; the rest repairs
        and polishes in OR-Tools.
    insert_share
        Share of the budget at most spent placing visits the repair left out.
    min_polish_s
        When the polish would get less than this (``1 - search_share`` of
        the budget) ...
    short_search_share
        ... PyVRP searches this share of the budget instead, the rest for the
        repair and insertion (and what polish fits).
    min_budget_s
        Below this budget the hybrid is not tried (plain OR-Tools answers).
    limits_alone
        Whether a day with visit limits but no breaks goes through the
        hybrid too (else OR-Tools, which expresses it exactly, searches it).
    """

    enabled: bool = True
    break_point: float = 0.5
    search_share: float = 0.85
    insert_share: float = 0.05
    min_polish_s: float = 0.5
    short_search_share: float = 0.95
    min_budget_s: float = 0.5
    limits_alone: bool = False


@dataclass(frozen=True)
class BudgetParams:
    """How a search spends its one deadline (:class:`solver.search.deadline.Deadline`).

    Parameters
    ----------
    finish_reserve_s
        CPU seconds kept back from a plan's time limit for building the plan
        after the search (timing every route, cutting slots), turned into
        wall seconds at the share of a core the plan has had
        (:meth:`solver.search.deadline.Deadline.end`) ...
    finish_reserve_per_visit_s
        ... and this much more per visit (0.76-1.04 s of CPU for 1,000 visits;
        the PyVRP path keeps its own: :class:`~solver.search.ils.IlsParams`).
    share_prior_weight_s
        The share of a core the plan gets (which stretches the reserve) is
        measured over the search, starting from a whole core counted as if
        measured over this many seconds: the territories' shares are fixed
        early, and a pessimistic guess there (the tasks running at that
        instant) starved them (756 of 1,000 visits served at 10 s); the
        polish at the end absorbs what the measure adds.
    min_descent_s
        OR-Tools' first solution and descent, then ruin and recreate, start
        only with this much time left; with less, one guided local search
        takes what is left.
    heavy_build_factor
        A second whole-day OR-Tools model (the full operator set, for
        workload-balanced days) is built only while this many times the
        first one's building time is left.
    fallback_grace_s
        A search without a first solution at its deadline places visits by
        cheapest insertion for at most this long after it.
    min_territory_s
        A territory's search gets at least this long while the territories'
        deadline allows (model building needs it; territories after it get
        less).
    min_search_share
        A plan's time limit covers the whole plan, geocoding and the travel
        matrix included; but its search gets at least this share of the limit
        after them: a cold matrix that takes longer than the rest (a whole
        city's e-bike and walking times) delays the plan by the overrun
        instead of leaving it no search.
    """

    finish_reserve_s: float = 0.05
    finish_reserve_per_visit_s: float = 0.001
    share_prior_weight_s: float = 0.5
    min_descent_s: float = 1.0
    heavy_build_factor: float = 3.0
    fallback_grace_s: float = 0.5
    min_territory_s: float = 0.3
    min_search_share: float = 0.5


@dataclass(frozen=True)
class SearchParams:
    """Everything that tunes a day's search.

    Parameters
    ----------
    use_ils
        Days PyVRP can express (:func:`solver.search.expressible`) are
        searched by PyVRP's iterated local search instead of OR-Tools.
    model
        The OR-Tools model and its guided local search.
    ruin_recreate
        The ruin and recreate around OR-Tools (and :func:`solver.search.polish`).
    territories
        The decomposition of large days.
    ils
        PyVRP's search.
    portfolio
        Several PyVRP searches on several cores.
    hybrid
        PyVRP on days with breaks, OR-Tools for the breaks
        (:mod:`solver.search.hybrid`).
    budget
        How the search spends its deadline.
    """

    use_ils: bool = True
    model: ModelParams = field(default_factory=ModelParams)
    ruin_recreate: RuinRecreateParams = field(default_factory=RuinRecreateParams)
    territories: TerritoryParams = field(default_factory=TerritoryParams)
    ils: IlsParams = field(default_factory=IlsParams)
    portfolio: PortfolioParams = field(default_factory=PortfolioParams)
    hybrid: HybridParams = field(default_factory=HybridParams)
    budget: BudgetParams = field(default_factory=BudgetParams)

    def stopping_after(self, iterations: int) -> SearchParams:
        """These parameters with every search stopped after ``iterations``
        iterations (ruin and recreate, PyVRP) or solutions (OR-Tools' guided
        local search), or at its time limit if that comes first: searches
        that end deterministically and early, for tests."""
        return dataclasses.replace(
            self,
            model=dataclasses.replace(self.model, solution_limit=iterations),
            ruin_recreate=dataclasses.replace(self.ruin_recreate, max_iterations=iterations),
            ils=dataclasses.replace(self.ils, max_iterations=iterations),
        )

    def for_options(self, options: Options) -> SearchParams:
        """These parameters with the stop a plan's options ask for
        (``Options.max_iterations``: :meth:`stopping_after`), if any."""
        if options.max_iterations is None:
            return self
        return self.stopping_after(options.max_iterations)
