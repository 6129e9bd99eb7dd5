"""The search of a day's routes.

:func:`search` is the entry point (:mod:`solver.search.engine`): days PyVRP
can express go to PyVRP, the others (and re-plans) to OR-Tools, whose model
keeps the whole problem (breaks, legal hours, crew size, booking, re-plans,
repairs). The modules:

* :mod:`solver.search.params` — the tuning of every search, as frozen
  dataclasses passed in (:class:`SearchParams` and its parts); the defaults
  are the product's.
* :mod:`solver.search.raw` — what a search returns (:class:`RawSolution`).
* :mod:`solver.search.costs` — the objective priced outside OR-Tools.
* :mod:`solver.search.ortools_model` — the OR-Tools model of a day.
* :mod:`solver.search.ruin_recreate` — iterated ruin and recreate around
  OR-Tools, and :func:`polish` for days solved in parts.
* :mod:`solver.search.territories` — large days OR-Tools must take, solved
  territory by territory (:func:`search_by_territory`), with the left-out
  visits placed across territories (:func:`insert_dropped`).
* :mod:`solver.search.ils` — PyVRP's iterated local search (C++) on days it
  can express: time windows (several per address as a client group),
  alternative addresses, shifts, maximum working spans, capacities, travel
  modes, optional visits with prizes. No breaks, crew eligibility, visit
  limits, workload balance or stability costs: such days stay with OR-Tools.
* :mod:`solver.search.portfolio` — several independent searches (different
  seeds) in processes, keeping the best: ``Options.threads``.
* :mod:`solver.search.hybrid` — days PyVRP cannot express only because of
  breaks (collection days: a lunch on every route): PyVRP searches the day
  with the breaks cut out of the clock, OR-Tools repairs and polishes the
  routes with its full model.

Every route PyVRP returns is timed by :func:`solver.timing.simulate` before
it reaches a plan, and a day whose routes it cannot time goes back to
OR-Tools.
"""

from solver.search.deadline import Deadline
from solver.search.engine import search
from solver.search.ils import IlsParams, IlsResult, expressible, ils_search
from solver.search.params import (
    BudgetParams,
    HybridParams,
    ModelParams,
    RuinRecreateParams,
    SearchParams,
    TerritoryParams,
)
from solver.search.portfolio import PortfolioParams, portfolio_search
from solver.search.raw import RawRoute, RawSolution, RawStop
from solver.search.ruin_recreate import polish
from solver.search.territories import insert_dropped, search_by_territory
from solver.search.threads import available_cores, search_threads, threads_for

__all__ = [
    "BudgetParams",
    "Deadline",
    "HybridParams",
    "IlsParams",
    "IlsResult",
    "ModelParams",
    "PortfolioParams",
    "RawRoute",
    "RawSolution",
    "RawStop",
    "RuinRecreateParams",
    "SearchParams",
    "TerritoryParams",
    "available_cores",
    "expressible",
    "ils_search",
    "insert_dropped",
    "polish",
    "portfolio_search",
    "search",
    "search_by_territory",
    "search_threads",
    "threads_for",
]
