"""Compatibility names: the search moved to :mod:`solver.search`.

The OR-Tools model is :mod:`solver.search.ortools_model`, the ruin and
recreate :mod:`solver.search.ruin_recreate`, the entry point
:func:`solver.search.search`; the tuning that was module constants here is
:class:`solver.search.SearchParams`, passed in. Import from
:mod:`solver.search`; this module only re-exports for code written before.
"""

from solver.search import RawRoute, RawSolution, RawStop, SearchParams, polish, search
from solver.search.ortools_model import search_parameters

__all__ = ["RawRoute", "RawSolution", "RawStop", "SearchParams", "polish", "search", "search_parameters"]
