"""Independent searches on several cores, keeping the best.

``Options.threads`` searches run at once, each with its own seed: one in the
calling process, the others in child processes (forked where the platform
allows, so the translated day is not copied through a pipe). Each child sends
back its routes; the cheapest feasible solution wins. A child that cannot
start (a daemonic parent, no ``fork``) or does not answer in time is simply
not counted: the search in the calling process always runs.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from solver.compile import RoutingData
from solver.processes import die_with_parent
from solver.search.ils import IlsParams, IlsResult, Translation, price, solve_translation, translate


@dataclass(frozen=True)
class PortfolioParams:
    """Tuning of :func:`portfolio_search`.

    Parameters
    ----------
    seed_stride
        Search ``k`` runs with seed ``seed + k × seed_stride``.
    answer_grace_s
        How long after its budget a child may take to send its routes.
    load_aware
        When neither the plan (``Options.threads``) nor the configuration
        (``[planning] threads``) says how many searches to run, run one per
        core left free by other work (:func:`solver.search.threads.default_threads`);
        off: one per available core.
    spare_share
        A core counts as free for a search when at least this share of it is
        (:func:`solver.search.threads.threads_for`).
    """

    seed_stride: int = 7919
    answer_grace_s: float = 0.5
    load_aware: bool = True
    spare_share: float = 0.5


def _child(translation: Translation, budget_s: float, seed: int, params: IlsParams, send: Connection) -> None:
    """A child search: send (routes, feasible, iterations), or None on failure.
    It dies with the search that started it (a job killed at its cap, a lost worker)."""
    die_with_parent()
    try:
        send.send(solve_translation(translation, budget_s, seed, params))
    except Exception:  # noqa: BLE001 - a failed child counts as no result; the parent keeps the others
        send.send(None)
    finally:
        send.close()


def portfolio_search(data: RoutingData, time_limit_s: float, *, threads: int, seed: int = 0,
                     params: IlsParams | None = None,
                     portfolio: PortfolioParams | None = None,
                     translation: Translation | None = None) -> IlsResult | None:
    """``threads`` PyVRP searches of ``data`` with different seeds within
    ``time_limit_s``; the best (feasible first, then cheapest), or None when
    the budget is too short (see :func:`solver.search.ils.ils_search`).
    ``translation``: ``data`` as PyVRP sees it, when the caller made it
    (default :func:`solver.search.ils.translate`)."""
    params = params or IlsParams()
    portfolio = portfolio or PortfolioParams()
    started = time.perf_counter()
    translation = translation if translation is not None else translate(data)
    budget = params.budget(time_limit_s, len(data.visit_nodes)) - (time.perf_counter() - started)
    if budget < params.min_budget_s:
        return None
    children: list[tuple[Any, Connection]] = []
    if threads > 1:
        methods = multiprocessing.get_all_start_methods()
        ctx: Any = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        for k in range(1, threads):
            receive, send = ctx.Pipe(duplex=False)
            try:
                process = ctx.Process(target=_child, args=(translation, budget, seed + k * portfolio.seed_stride,
                                                           params, send), daemon=True)
                process.start()
            except (AssertionError, OSError):  # daemonic parent, or no more processes
                break
            send.close()
            children.append((process, receive))
    answers = [solve_translation(translation, budget, seed, params)]
    deadline = started + budget + portfolio.answer_grace_s
    for process, receive in children:
        try:
            if receive.poll(max(0.0, deadline - time.perf_counter())):
                answer = receive.recv()
                if answer is not None:
                    answers.append(answer)
        except (EOFError, OSError):
            pass
        finally:
            receive.close()
            if process.is_alive():
                process.terminate()
            process.join(0.5)
    priced = []
    for routes, feasible, iterations in answers:
        sequences, cost = price(data, translation, routes)
        priced.append((not feasible, cost, sequences, feasible, iterations))
    priced.sort(key=lambda p: (p[0], p[1]))
    _, cost, sequences, feasible, _ = priced[0]
    return IlsResult(sequences, cost, feasible, iterations=sum(p[4] for p in priced),
                     seconds=time.perf_counter() - started, searches=len(priced),
                     costs=[p[1] for p in priced])
