"""Search engines beside OR-Tools' routing library.

:mod:`solver.engine` keeps the OR-Tools model of the whole problem (breaks,
legal hours, crew size, booking, re-plans, repairs). This package holds
searches that solve the parts of a day another engine expresses better:

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

Every route a search here returns is timed by :func:`solver.timing.simulate`
before it reaches a plan, and a route it cannot time sends the day back to
OR-Tools.
"""

from solver.search.ils import IlsParams, IlsResult, expressible, ils_search
from solver.search.portfolio import PortfolioParams, available_cores, portfolio_search

__all__ = [
    "IlsParams",
    "IlsResult",
    "PortfolioParams",
    "available_cores",
    "expressible",
    "ils_search",
    "portfolio_search",
]
