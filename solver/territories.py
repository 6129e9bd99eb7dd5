"""Compatibility names: the decomposition moved to :mod:`solver.search.territories`.

Its tuning, module constants here before, is
:class:`solver.search.TerritoryParams` (in :class:`solver.search.SearchParams`),
passed in. Import from :mod:`solver.search`; this module only re-exports for
code written before.
"""

from solver.search.territories import crew_groups, insert_dropped, polish_merged, retime, search_by_territory

__all__ = ["crew_groups", "insert_dropped", "polish_merged", "retime", "search_by_territory"]
