"""Apps of the test processes compile each URL rule's builders when a URL is first built.

werkzeug compiles two builder functions per rule (``url_for``'s) as each rule is added: for
our 41 rules, three quarters of ``create_app``'s 28 ms of CPU. The suite builds about 430 apps
and builds URLs in a few of them (the pages' asset links, the agent page's redirect), so the
test processes defer that compile to the rule's first use, where werkzeug compiles exactly what
it compiled before (measured over the whole suite: 12.2 s of CPU in ``create_app``, 4.7 s
deferred). Rules still match and build as in production: only the moment of the compile moves.

``Rule._compile_builder`` is werkzeug's own, not public: if a release drops it, nothing is
deferred and the suite is only slower (``test_lazyroutes.py`` then says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Rule

__all__ = ["defer_url_builders", "deferred"]

_ORIGINAL: Callable[..., Any] | None = getattr(Rule, "_compile_builder", None)


def _on_first_use(rule: Rule, *args: Any, **kwargs: Any) -> Callable[..., Any]:
    """A builder that compiles werkzeug's own builder for ``rule`` on its first call, then calls it."""
    compiled: Callable[..., Any] | None = None

    def build(bound: Rule, *call_args: Any, **call_kwargs: Any) -> Any:
        nonlocal compiled
        if compiled is None:
            assert _ORIGINAL is not None
            compiled = _ORIGINAL(bound, *args, **kwargs)
        return compiled(bound, *call_args, **call_kwargs)

    return build


def defer_url_builders() -> bool:
    """Defer the builders' compile in this process; False when werkzeug has no such step."""
    if _ORIGINAL is None:
        return False
    Rule._compile_builder = _on_first_use  # type: ignore[method-assign, assignment]
    return True


def deferred() -> bool:
    """Whether this process defers the compile."""
    return _ORIGINAL is not None and Rule._compile_builder is _on_first_use
