"""The values of a JSON document, for tests asserting that an amount is nowhere in an answer.

Searching the serialised text for the amount's digits ("500") also matches ids and timestamps:
a uuid4 hex holds "500" about once in 140 (`test_app_outcome_amounts.py` failed so, once in
about twenty suite runs). :func:`shown_values` compares values, not text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["leaves", "shown_values"]


def leaves(document: Any) -> Iterator[Any]:
    """Every scalar of ``document`` (dicts' values, lists' items, recursively)."""
    if isinstance(document, dict):
        for value in document.values():
            yield from leaves(value)
    elif isinstance(document, (list, tuple)):
        for item in document:
            yield from leaves(item)
    else:
        yield document


def shown_values(document: Any, *amounts: float) -> set[float]:
    """Which of ``amounts`` appear in ``document`` as a number or as a number's text."""
    found = set()
    for leaf in leaves(document):
        if isinstance(leaf, bool) or leaf is None:
            continue
        for amount in amounts:
            if (isinstance(leaf, (int, float)) and leaf == amount) or (
                    isinstance(leaf, str) and leaf.strip() in {f"{amount}", f"{amount:g}", f"{float(amount)}"}):
                found.add(amount)
    return found
