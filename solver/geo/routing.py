"""Travel matrices from an external routing server, and the choice of travel model.

An operator who runs a routing server — `OSRM <https://project-osrm.org>`_
(``osrm-routed``) or `Valhalla <https://valhalla.github.io/valhalla/>`_ — can
have Doorstep price travel on it instead of on the bundled street extract::

    [routing]
    provider = "osrm"                 # bundled | straight | osrm | valhalla
    url = "http://127.0.0.1:5000"

:class:`RoutingServerTravel` implements the :class:`~solver.travel.TravelModel`
protocol on the server's many-to-many API (OSRM's ``/table/v1/{profile}/
{lon,lat;...}?annotations=duration,distance``, Valhalla's
``/sources_to_targets``):

* **Profiles.** Each travel mode asks one server profile (OSRM: ``drive`` →
  ``car``, ``ebike`` → ``bike``, ``walk`` → ``foot``; Valhalla: ``auto``,
  ``bicycle``, ``pedestrian``), configurable in ``[routing.profiles]``.
* **Chunking.** A server answers at most ``max_table_size`` points per
  request (OSRM's ``--max-table-size``, 100 by default). Up to that many
  points go in one request; more are cut into chunks of half that size and
  asked block by block — chunk *I* as sources × chunk *J* as destinations, so
  no request carries more than ``max_table_size`` coordinates or more than
  ``max_table_size²`` pairs — and the blocks are put back together.
* **Cache.** Whole matrices are cached by content (server, profile, mode,
  points) in a :class:`~solver.geo.matrixcache.MatrixCache`, in memory and
  optionally as ``.npz`` files, like the bundled network's.
* **Failures.** Every request has a connect and a read timeout; a timeout, a
  refused connection, a 5xx or a 429 is retried a bounded number of times
  with a growing wait; then :class:`TravelUnavailable` is raised with a
  message a dispatcher can act on (``routing_unavailable: OSRM at
  http://… did not answer …``). A server that answers but refuses the request
  (a 4xx such as OSRM's ``TooBig``) is not retried. There is no silent
  fallback to other travel times: a plan is priced on one model or fails.

The HTTP protocol is spoken through `routingpy <https://routingpy.readthedocs.io>`_
(URL and parameter formats, answer parsing, both servers), with its own
retry loop switched off: it retries by elapsed time, sleeps with warnings and
lets connection errors through unwrapped, so the bounded retry policy lives
here.

:func:`travel_model_from_config` is where the service, the worker and the
CLI get their travel model: the bundled road network by default.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from solver.config import defaults
from solver.geo.coords import to_wgs84
from solver.geo.matrixcache import MatrixCache, matrix_key
from solver.model import Location, TravelMode
from solver.travel import UNREACHABLE_S, StraightLineTravel, TravelMatrix, TravelModel

__all__ = [
    "DEFAULT_PROFILES",
    "PROVIDERS",
    "RoutingServerTravel",
    "ServerKind",
    "TravelUnavailable",
    "travel_model_from_config",
]

#: Kinds of routing server this module speaks to.
ServerKind = Literal["osrm", "valhalla"]

#: Values of ``[routing] provider``.
PROVIDERS: tuple[str, ...] = ("bundled", "straight", "osrm", "valhalla")

#: Server profile asked for each travel mode, per server kind.
DEFAULT_PROFILES: dict[str, dict[str, str]] = {
    "osrm": {"drive": "car", "ebike": "bike", "walk": "foot"},
    "valhalla": {"drive": "auto", "ebike": "bicycle", "walk": "pedestrian"},
}

_LABELS: dict[str, str] = {"osrm": "OSRM", "valhalla": "Valhalla"}

_Floats = npt.NDArray[np.float64]
_Ints = npt.NDArray[np.int64]


class TravelUnavailable(RuntimeError):
    """The routing server could not price travel: down, too slow, or refusing.

    The message starts with :attr:`code` (``routing_unavailable``), names the
    server and says what happened, for example ``routing_unavailable: OSRM at
    http://10.0.0.5:5000 did not answer (ConnectionError after 3 tries)``.

    Attributes
    ----------
    code : str
        ``"routing_unavailable"``.
    provider : str
        ``"osrm"`` or ``"valhalla"``.
    url : str
        The server's base URL.
    detail : str
        What happened.
    """

    code = "routing_unavailable"

    def __init__(self, provider: str, url: str, what: str, detail: str) -> None:
        self.provider = provider
        self.url = url
        self.detail = detail
        label = _LABELS.get(provider, provider)
        super().__init__(f"{self.code}: {label} at {url} {what} ({detail})")


class _Refused(Exception):
    """A 4xx answer (or an answer that says the request was wrong): not retried."""


class RoutingServerTravel:
    """Travel matrices from an OSRM or Valhalla server (a :class:`~solver.travel.TravelModel`).

    Parameters
    ----------
    url : str
        The server's base URL, such as ``"http://127.0.0.1:5000"`` (no
        trailing slash needed).
    kind : {"osrm", "valhalla"}, optional
        The server's API.
    profiles : Mapping of str to str, optional
        Server profile per travel mode; missing modes take
        :data:`DEFAULT_PROFILES`.
    max_table_size : int, optional
        Most points the server accepts in one matrix request (OSRM's
        ``--max-table-size``; at least 2).
    timeout_s : float, optional
        Read timeout of one request, seconds.
    connect_timeout_s : float, optional
        Connect timeout of one request, seconds.
    retries : int, optional
        Extra tries of a request after a timeout, a refused connection, a
        5xx or a 429.
    retry_wait_s : float, optional
        Wait before the first retry; doubled before each next one.
    parallel_requests : int, optional
        Blocks of a chunked matrix asked at the same time.
    cache : MatrixCache, optional
        Default: a new in-memory cache of 16 matrices.
    data_version : str, optional
        Put into the cache key: change it when the server's map is updated
        so that cached ``.npz`` files of the old map are not reused.
    user_agent : str, optional
        Sent as the HTTP User-Agent.

    Attributes
    ----------
    requests : int
        HTTP requests sent so far (retries included).

    Examples
    --------
    >>> osrm = RoutingServerTravel("http://127.0.0.1:5000")
    >>> m = osrm.matrix(points, "drive")  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        *,
        kind: ServerKind = "osrm",
        profiles: Mapping[str, str] | None = None,
        max_table_size: int = 100,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
        retries: int = 2,
        retry_wait_s: float = 0.5,
        parallel_requests: int = 2,
        cache: MatrixCache | None = None,
        data_version: str = "",
        user_agent: str = "doorstep-routing/0.1",
    ) -> None:
        if kind not in DEFAULT_PROFILES:
            raise ValueError(f"unknown routing server kind {kind!r}; use osrm or valhalla")
        if not url or not url.startswith(("http://", "https://")):
            raise ValueError(f"routing server URL {url!r} must start with http:// or https://")
        if int(max_table_size) < 2:
            raise ValueError("max_table_size must be at least 2")
        self.url = url.rstrip("/")
        self.kind: ServerKind = kind
        self.profiles = {**DEFAULT_PROFILES[kind], **dict(profiles or {})}
        self.max_table_size = int(max_table_size)
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.retries = max(0, int(retries))
        self.retry_wait_s = max(0.0, float(retry_wait_s))
        self.parallel_requests = max(1, int(parallel_requests))
        self.matrix_cache = cache if cache is not None else MatrixCache()
        self.data_version = data_version
        self.user_agent = user_agent
        self.network_id = f"{kind} {self.url} {data_version}"
        self.requests = 0
        self._count_lock = threading.Lock()
        self._local = threading.local()

    # ------------------------------------------------------------------ #
    # Construction
    # ------------------------------------------------------------------ #
    @classmethod
    def from_config(cls, settings: Mapping[str, Any], *, cache_dir: str | None = None) -> RoutingServerTravel:
        """Build the model a ``[routing]`` table describes.

        Parameters
        ----------
        settings : Mapping
            ``provider`` (``"osrm"`` or ``"valhalla"``), ``url``, and
            optionally ``profiles``, ``max_table_size``, ``timeout_s``,
            ``connect_timeout_s``, ``retries``, ``retry_wait_s``,
            ``parallel_requests``, ``matrix_cache_dir``, ``data_version``.
        cache_dir : str, optional
            Folder for cached matrices when ``settings`` names none.

        Returns
        -------
        RoutingServerTravel

        Raises
        ------
        ValueError
            On an unknown provider or a missing URL.
        """
        kind = str(settings.get("provider", "osrm")).lower()
        if kind not in DEFAULT_PROFILES:
            raise ValueError(f"[routing] provider {kind!r} is not a routing server; use osrm or valhalla")
        url = str(settings.get("url") or "")
        if not url:
            raise ValueError(f"[routing] provider = {kind!r} needs a url (such as http://127.0.0.1:5000)")
        folder = settings.get("matrix_cache_dir") or cache_dir or None
        return cls(
            url,
            kind=kind,  # type: ignore[arg-type]  # checked against DEFAULT_PROFILES above
            profiles=dict(settings.get("profiles") or {}),
            max_table_size=int(settings.get("max_table_size", 100)),
            timeout_s=float(settings.get("timeout_s", 10.0)),
            connect_timeout_s=float(settings.get("connect_timeout_s", 3.0)),
            retries=int(settings.get("retries", 2)),
            retry_wait_s=float(settings.get("retry_wait_s", 0.5)),
            parallel_requests=int(settings.get("parallel_requests", 2)),
            cache=MatrixCache(16, folder),
            data_version=str(settings.get("data_version", "")),
            user_agent=str(settings.get("user_agent", "doorstep-routing/0.1")),
        )

    def __repr__(self) -> str:
        return f"RoutingServerTravel({self.url!r}, kind={self.kind!r})"

    # ------------------------------------------------------------------ #
    # Matrices
    # ------------------------------------------------------------------ #
    def profile(self, mode: TravelMode) -> str:
        """The server profile asked for ``mode``.

        Raises
        ------
        ValueError
            When no profile is configured for the mode.
        """
        try:
            return self.profiles[mode]
        except KeyError:
            raise ValueError(f"no {self.kind} profile for travel mode {mode!r} in [routing.profiles]") from None

    def matrix(self, points: Sequence[Location], mode: TravelMode) -> TravelMatrix:
        """Travel times and distances between every ordered pair of points.

        Parameters
        ----------
        points : sequence of solver.model.Location
            Points in any supported datum (sent to the server in WGS-84).
        mode : {"drive", "ebike", "walk"}
            Travel mode; asks the mode's profile.

        Returns
        -------
        solver.travel.TravelMatrix
            Whole seconds and whole metres as the server computed them
            (rounded to the nearest). Identical points give 0. Pairs the
            server finds no route for have ``reachable`` False and hold
            :data:`solver.travel.UNREACHABLE_S`.

        Raises
        ------
        TravelUnavailable
            When the server does not answer after the retries, or refuses
            the request.
        """
        profile = self.profile(mode)
        wgs = [to_wgs84(p) for p in points]
        lats = np.array([p.lat for p in wgs], dtype=float)
        lons = np.array([p.lon for p in wgs], dtype=float)
        key = matrix_key(f"{self.network_id} {profile}", mode, lats, lons)
        cached = self.matrix_cache.get(key)
        if cached is not None:
            return cached
        result = self._compute(lats, lons, profile)
        self.matrix_cache.put(key, result)
        return result

    def blocks(self, n: int) -> list[tuple[range, range]]:
        """How a matrix over ``n`` points is cut into requests.

        Parameters
        ----------
        n : int
            Number of points.

        Returns
        -------
        list of (range, range)
            (sources, destinations) index ranges: one block for up to
            ``max_table_size`` points, else every pair of chunks of
            ``max_table_size // 2`` points.
        """
        if n <= self.max_table_size:
            return [(range(n), range(n))] if n else []
        size = self.max_table_size // 2
        chunks = [range(lo, min(n, lo + size)) for lo in range(0, n, size)]
        return [(src, dst) for src in chunks for dst in chunks]

    def _compute(self, lats: _Floats, lons: _Floats, profile: str) -> TravelMatrix:
        n = lats.size
        seconds = np.zeros((n, n), dtype=float)
        metres = np.zeros((n, n), dtype=float)
        if n > 1:
            blocks = self.blocks(n)
            if len(blocks) == 1 or self.parallel_requests == 1:
                answers = [self._block(lats, lons, src, dst, profile) for src, dst in blocks]
            else:
                with cf.ThreadPoolExecutor(self.parallel_requests, thread_name_prefix="routing") as pool:
                    futures = [pool.submit(self._block, lats, lons, src, dst, profile) for src, dst in blocks]
                    try:
                        answers = [f.result() for f in futures]
                    except BaseException:
                        for f in futures:
                            f.cancel()
                        raise
            for (src, dst), (block_s, block_m) in zip(blocks, answers):
                seconds[src.start:src.stop, dst.start:dst.stop] = block_s
                metres[src.start:src.stop, dst.start:dst.stop] = block_m
        np.fill_diagonal(seconds, 0.0)
        np.fill_diagonal(metres, 0.0)
        missing = np.isnan(seconds) | np.isnan(metres)
        durations: _Ints = np.rint(np.where(missing, UNREACHABLE_S, seconds)).astype(np.int64)
        distances: _Ints = np.rint(np.where(missing, UNREACHABLE_S, metres)).astype(np.int64)
        reachable = ~missing if missing.any() else None
        return TravelMatrix(durations=durations, distances=distances, reachable=reachable)

    # ------------------------------------------------------------------ #
    # Requests
    # ------------------------------------------------------------------ #
    def _router(self) -> Any:
        """This thread's routingpy router (one HTTP session per thread)."""
        router = getattr(self._local, "router", None)
        if router is None:
            from routingpy import OSRM, Valhalla

            factory = OSRM if self.kind == "osrm" else Valhalla
            router = factory(
                base_url=self.url,
                user_agent=self.user_agent,
                timeout=(self.connect_timeout_s, self.timeout_s),
                retry_over_query_limit=False,
                client=_single_try_client(),
            )
            self._local.router = router
        return router

    def _block(self, lats: _Floats, lons: _Floats, src: range, dst: range, profile: str) -> tuple[_Floats, _Floats]:
        """Seconds and metres (NaN: no route) from the points ``src`` to the points ``dst``."""
        same = src == dst
        indices = list(src) if same else [*src, *dst]
        locations = [[float(lons[i]), float(lats[i])] for i in indices]
        sources = None if same else list(range(len(src)))
        destinations = None if same else list(range(len(src), len(indices)))
        answer = self._ask(locations, profile, sources, destinations)
        shape = (len(src), len(dst))
        try:
            return _as_array(answer.durations, shape), _as_array(answer.distances, shape)
        except (ValueError, TypeError) as exc:
            raise TravelUnavailable(self.kind, self.url, "gave an unreadable answer", str(exc)) from None

    def _ask(
        self, locations: list[list[float]], profile: str, sources: list[int] | None, destinations: list[int] | None
    ) -> Any:
        """One matrix request, retried after timeouts, refused connections, 5xx and 429."""
        import requests
        from routingpy import exceptions as rexc

        failure = "no answer"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_wait_s * 2 ** (attempt - 1))
            with self._count_lock:
                self.requests += 1
            try:
                answer = self._call(locations, profile, sources, destinations)
            except _Refused as exc:
                raise TravelUnavailable(self.kind, self.url, "refused the matrix request", str(exc)) from None
            except rexc.RouterApiError as exc:  # 4xx other than 429
                raise TravelUnavailable(self.kind, self.url, "refused the matrix request",
                                        _api_error(exc)) from None
            except rexc.Timeout:
                failure = f"no answer within {self.timeout_s:g} s"
            except rexc.RouterError as exc:  # 5xx, 429
                failure = f"HTTP {exc.status}"
            except requests.RequestException as exc:
                failure = type(exc).__name__
            except (rexc.JSONParseError, ValueError, KeyError, TypeError) as exc:
                failure = f"unreadable answer: {type(exc).__name__}"
            else:
                return answer
        tries = self.retries + 1
        raise TravelUnavailable(self.kind, self.url, "did not answer",
                                f"{failure} after {tries} {'try' if tries == 1 else 'tries'}")

    def _call(
        self, locations: list[list[float]], profile: str, sources: list[int] | None, destinations: list[int] | None
    ) -> Any:
        router = self._router()
        if self.kind == "osrm":
            answer = router.matrix(locations, profile=profile, sources=sources, destinations=destinations,
                                   annotations=["duration", "distance"])
            code = (answer.raw or {}).get("code", "Ok")
            if code != "Ok":
                raise _Refused(f"{code}: {(answer.raw or {}).get('message', '')}".strip())
            return answer
        return router.matrix(locations, profile=profile, sources=sources, destinations=destinations)


@functools.cache
def _single_try_client() -> Any:
    """routingpy's HTTP client with its own retry loop taken out.

    routingpy retries a 503 until a time budget runs out, sleeping and
    warning between tries; here a 503 is raised at once as
    :class:`routingpy.exceptions.RouterServerError` (from a response hook
    of the client's HTTP session, before routingpy sees the answer) and the
    bounded retries of :meth:`RoutingServerTravel._ask` decide what happens
    next.
    """
    from routingpy import exceptions as rexc
    from routingpy.client_default import Client

    def busy(response: Any, *args: Any, **kwargs: Any) -> Any:
        if response.status_code == 503:
            raise rexc.RouterServerError(503, response.text[:200])
        return response

    class SingleTryClient(Client):  # type: ignore[misc]  # routingpy is untyped
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._session.hooks["response"].append(busy)

    return SingleTryClient


def _as_array(rows: Any, shape: tuple[int, int]) -> _Floats:
    """A server's list of rows (``None`` for no route) as floats with NaN."""
    if rows is None:
        raise ValueError("the answer has no table")
    out = np.array([[np.nan if v is None else float(v) for v in row] for row in rows], dtype=float)
    if out.shape != shape:
        raise ValueError(f"the answer's table is {out.shape}, {shape} asked")
    return out


def _api_error(exc: Exception) -> str:
    """``"HTTP 400 TooBig: Too many table coordinates"`` from a routingpy API error."""
    status = getattr(exc, "status", None)
    message = str(getattr(exc, "message", "") or "")
    try:
        body = json.loads(message)
        message = f"{body.get('code', '')}: {body.get('message', body.get('error', ''))}".strip(": ")
    except (ValueError, AttributeError):
        message = message[:200]
    return f"HTTP {status} {message}".strip()


# --------------------------------------------------------------------------- #
# The travel model in force
# --------------------------------------------------------------------------- #
_SERVERS: dict[str, RoutingServerTravel] = {}
_SERVERS_LOCK = threading.Lock()


def travel_model_from_config(config: Mapping[str, Any] | None = None) -> TravelModel:
    """The travel model the ``[routing]`` configuration names.

    Parameters
    ----------
    config : Mapping, optional
        A whole configuration (with a ``[routing]`` table, and ``[map]`` /
        ``[speeds_kmh]`` used by the other providers); default: the
        configuration in force (:func:`solver.config.defaults`).

    Returns
    -------
    solver.travel.TravelModel
        ``provider = "bundled"`` (the default): the bundled road network
        (:func:`~solver.geo.network.load_bundled_network`, built once per
        process); ``"straight"``: :class:`~solver.travel.StraightLineTravel`
        at the ``[speeds_kmh]`` speeds; ``"osrm"`` / ``"valhalla"``: a
        :class:`RoutingServerTravel` on ``url`` (nothing is asked until the
        first matrix), one per process for the same settings, so its matrix
        cache is shared.

    Raises
    ------
    ValueError
        On an unknown provider or a server provider without a URL.
    """
    cfg = defaults() if config is None else config
    section = dict(cfg.get("routing", {}))
    provider = str(section.get("provider", "bundled")).lower()
    if provider == "bundled":
        from solver.geo.network import load_bundled_network

        return load_bundled_network()
    if provider == "straight":
        speeds = cfg.get("speeds_kmh", {})
        kmh = {mode: float(speeds.get(mode, default)) for mode, default in (
            ("drive", 25.0), ("ebike", 15.0), ("walk", 4.5))}
        return StraightLineTravel(speeds_kmh=kmh, detour_factor=float(speeds.get("detour_factor", 1.35)))
    if provider in DEFAULT_PROFILES:
        cache_dir = cfg.get("map", {}).get("matrix_cache_dir") or None
        key = json.dumps([section, cache_dir], sort_keys=True, default=str)
        with _SERVERS_LOCK:  # one model (and matrix cache) per server settings and process
            model = _SERVERS.get(key)
            if model is None:
                model = _SERVERS[key] = RoutingServerTravel.from_config(section, cache_dir=cache_dir)
        return model
    raise ValueError(f"unknown [routing] provider {provider!r}; use one of {', '.join(PROVIDERS)}")
