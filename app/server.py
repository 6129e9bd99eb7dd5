"""The production HTTP server: gunicorn, run from ``doorstep serve``.

``doorstep serve`` builds a :class:`DoorstepServer` (a
:class:`gunicorn.app.base.BaseApplication`) from :class:`ServerSettings` and
runs it in the foreground. ``doorstep serve --dev`` keeps Flask's own
development server instead (for debugging only).

Why gunicorn, and how it is set up:

* **Worker model.** ``gthread`` workers (:class:`DoorstepWorker`): each worker
  process runs a pool of ``threads`` request threads, and idle keep-alive
  connections wait in the worker's selector without holding a thread, so a
  few hundred keep-alive clients cost little. ``processes`` defaults to the
  number of usable CPU cores. The app is *not* preloaded: every worker builds
  its own app with :func:`app.create_app` after the fork, so no SQLite
  connection, Redis pool or thread crosses a fork. Its modules are: the
  master imports the views (:func:`app.api.import_views`) before forking,
  so a worker starts (and restarts after ``max_requests``) without
  decorating them again.
* **Limits.** Request line, header count and header size are limited
  (gunicorn answers 400 / 431 and closes); bodies above the app's
  ``MAX_CONTENT_LENGTH`` get 413; each worker holds at most
  ``worker_connections`` connections (so at most ``processes ×
  worker_connections`` in all) and the listen backlog is bounded.
* **Timeouts.** gunicorn's ``gthread`` worker reads a request with a
  blocking socket and no deadline, and keeps an accepted connection that
  never sends a byte for ever: a slow-loris client holds a thread, or a
  connection slot, as long as it likes. :class:`DoorstepWorker` adds a
  deadline: a request's line, headers and body must arrive within
  ``request_timeout`` seconds of its first byte (a new connection must send
  its first byte within that time too), otherwise the connection is closed.
  Idle keep-alive connections are closed after ``keepalive`` seconds, and a
  worker that stops answering the master for ``timeout`` seconds is
  restarted.
* **Graceful shutdown.** SIGTERM (or SIGINT) lets the workers finish the
  requests in flight for up to ``graceful_timeout`` seconds; each worker then
  closes its app's services (job runner, webhook, store). SIGHUP reloads the
  workers one after the other.
* **No version on the wire.** The ``Server`` header is ``doorstep`` (the
  ``server_header`` setting), never a product version.
* **No personal data in the access log.** The access log line holds the
  method and the path *without* the query string (itinerary queries carry a
  date, other queries may carry more), the status, the size and the time; no
  referrer, no user agent, no headers.

Settings come, in increasing precedence, from the defaults of :class:`ServerSettings`, the
``[server]`` table of ``config/defaults.toml``, ``DOORSTEP_SERVE_<NAME>``
environment variables (``DOORSTEP_SERVE_PROCESSES=4``) and the options of
``doorstep serve``.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from functools import partial
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import TConn, ThreadWorker

from solver.config import defaults
from solver.search.threads import available_cores

__all__ = [
    "ACCESS_LOG_FORMAT",
    "AccessLogger",
    "DoorstepServer",
    "DoorstepWorker",
    "ServerSettings",
]

log = logging.getLogger("doorstep.server")

#: Access log line: client, method, path without the query string, protocol,
#: status, body bytes, milliseconds. Nothing else (no query, referrer or agent).
#: (:class:`AccessLogger` writes exactly this, faster than gunicorn's formatter.)
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'

#: Environment variables ``DOORSTEP_SERVE_<NAME>`` override the settings.
ENV_PREFIX = "DOORSTEP_SERVE_"


@dataclass(frozen=True)
class ServerSettings:
    """How ``doorstep serve`` runs gunicorn. Every field can be set in
    ``[server]`` of the configuration and as ``DOORSTEP_SERVE_<FIELD>``."""

    #: Address and port to listen on.
    host: str = "127.0.0.1"
    port: int = 8000
    #: Worker processes; 0: one per usable CPU core.
    processes: int = 0
    #: Request threads per worker process.
    threads: int = 8
    #: Open connections per worker process (active and idle keep-alive);
    #: more wait in the listen backlog.
    worker_connections: int = 1000
    #: Listen backlog (connections accepted by the kernel, not yet by a worker).
    backlog: int = 2048
    #: Seconds a request's line, headers and body may take to arrive, from
    #: its first byte (and a new connection's wait for its first byte).
    request_timeout: float = 30.0
    #: Seconds an idle keep-alive connection is kept open.
    keepalive: int = 5
    #: Seconds a silent worker is given before the master restarts it.
    timeout: int = 120
    #: Seconds workers get to finish their requests on shutdown or reload.
    graceful_timeout: int = 30
    #: Longest request line (bytes; gunicorn answers 400 beyond it; max 8190).
    limit_request_line: int = 4094
    #: Most header fields in a request (431 beyond it).
    limit_request_fields: int = 50
    #: Longest header field (bytes, name and value; 431 beyond it).
    limit_request_field_size: int = 8190
    #: Restart a worker after this many requests (0: never), plus up to
    #: ``max_requests_jitter`` more so workers do not restart together.
    max_requests: int = 0
    max_requests_jitter: int = 0
    #: Where the access log goes: "-" standard output, a file path, or "" none.
    access_log: str = "-"
    #: Error log: "-" standard error or a file path.
    error_log: str = "-"
    log_level: str = "info"
    #: The ``Server`` response header.
    server_header: str = "doorstep"
    #: Reverse proxies in front that set X-Forwarded-For / -Proto (0: none,
    #: the client address is the peer's). Only set it when every request
    #: comes through those proxies.
    proxy_hops: int = 0
    #: Peers whose X-Forwarded-Proto gunicorn believes (comma-separated; "*" any).
    forwarded_allow_ips: str = "127.0.0.1"

    # ------------------------------------------------------------------ #
    @classmethod
    def resolve(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> ServerSettings:
        """Built-in values, then ``config`` (default: ``[server]`` of the
        configuration), then ``DOORSTEP_SERVE_*`` from ``environ`` (default:
        the process environment), then ``overrides`` whose value is not None.
        Raises ValueError for an unknown key or a value of the wrong kind."""
        environ = os.environ if environ is None else environ
        config = defaults().get("server", {}) if config is None else config
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in config.items():
            if name not in known:
                raise ValueError(f"unknown [server] setting {name!r}")
            values[name] = value
        for key, text in environ.items():
            if key.startswith(ENV_PREFIX):
                name = key[len(ENV_PREFIX):].lower()
                if name not in known:
                    raise ValueError(f"unknown setting {key}; known: "
                                     + ", ".join(ENV_PREFIX + n.upper() for n in known))
                values[name] = text
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        typed: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown server setting {name!r}")
            kind = type(getattr(cls, name))
            try:
                typed[name] = kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"server setting {name}: {value!r} is not {kind.__name__}") from None
        settings = replace(cls(), **typed)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ValueError when a setting is out of range."""
        positive = ("threads", "worker_connections", "backlog", "request_timeout", "timeout", "port")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"server setting {name} must be more than 0")
        for name in ("processes", "keepalive", "graceful_timeout", "max_requests", "max_requests_jitter",
                     "proxy_hops", "limit_request_fields", "limit_request_field_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"server setting {name} must not be negative")
        if not 0 < self.limit_request_line <= 8190:
            raise ValueError("server setting limit_request_line must be from 1 to 8190")
        if self.worker_connections <= self.threads:
            raise ValueError("server setting worker_connections must be more than threads (room for keep-alive)")
        if not self.server_header or any(c in self.server_header for c in "\r\n"):
            raise ValueError("server setting server_header must be a non-empty single line")

    @property
    def worker_processes(self) -> int:
        """``processes``, or the number of usable cores when it is 0."""
        return self.processes or available_cores()

    def gunicorn_options(self) -> dict[str, Any]:
        """The gunicorn settings (``gunicorn.config``) these stand for."""
        return {
            "bind": [f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"],
            "workers": self.worker_processes,
            "worker_class": DoorstepWorker,
            "threads": self.threads,
            "worker_connections": self.worker_connections,
            "backlog": self.backlog,
            "keepalive": self.keepalive,
            "timeout": self.timeout,
            "graceful_timeout": self.graceful_timeout,
            "limit_request_line": self.limit_request_line,
            "limit_request_fields": self.limit_request_fields,
            "limit_request_field_size": self.limit_request_field_size,
            "max_requests": self.max_requests,
            "max_requests_jitter": self.max_requests_jitter,
            "accesslog": self.access_log or None,
            "access_log_format": ACCESS_LOG_FORMAT,
            "errorlog": self.error_log,
            "loglevel": self.log_level,
            "forwarded_allow_ips": self.forwarded_allow_ips,
            "preload_app": False,  # every worker builds its own app after the fork
            "sendfile": False,  # request sockets carry a timeout (see DoorstepWorker)
            "proc_name": "doorstep",
            "logger_class": AccessLogger,
            "worker_exit": _worker_exit,
        }


# --------------------------------------------------------------------------- #
# Access log
# --------------------------------------------------------------------------- #
class AccessLogger(GunicornLogger):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's logger, with an access line of :data:`ACCESS_LOG_FORMAT`
    written directly: gunicorn's generic formatter builds a dictionary of
    every request and response header for each line, a tenth of the CPU of
    an itinerary request."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.cfg.accesslog:
            return
        ms = request_time.seconds * 1000 + request_time.microseconds // 1000
        sent = getattr(resp, "sent", None)
        client = environ.get("REMOTE_ADDR") or "-"
        path = environ.get("PATH_INFO") or "/"
        status = getattr(resp, "status_code", None) or "-"
        size = "-" if sent is None else sent
        line = f'{client} "{req.method} {path} HTTP/{req.version[0]}.{req.version[1]}" {status} {size} {ms}ms'
        try:
            self.access_log.info(line)
        except Exception:  # noqa: BLE001 - never fail a request for its log line
            self.exception("writing the access log")


# --------------------------------------------------------------------------- #
# The worker: gthread with request deadlines
# --------------------------------------------------------------------------- #
def _timeval(seconds: float) -> bytes:
    """A ``struct timeval`` for SO_RCVTIMEO / SO_SNDTIMEO (at least 1 ms: 0 means never)."""
    whole = max(0.001, seconds)
    return struct.pack("@ll", int(whole), int((whole - int(whole)) * 1_000_000))


class _DeadlineSocket:
    """A client socket with a deadline for the request being received.

    The worker's event loop reads a request's head (line and headers) itself,
    without blocking, into :attr:`pending`; gunicorn's parser, run on a
    request thread once the head is whole, gets those bytes first. Reads
    after that (the rest of a body) must finish by :attr:`deadline`: past it,
    :meth:`recv` raises :class:`NoMoreData`, which gunicorn treats as a client
    that went away (the connection is closed). A write that cannot proceed
    for ``io_timeout`` seconds fails (the connection is closed). Everything
    else goes to the socket.
    """

    __slots__ = ("_sock", "deadline", "io_timeout", "pending")

    def __init__(self, sock: socket.socket, io_timeout: float) -> None:
        self._sock = sock
        self.io_timeout = io_timeout
        self.deadline = time.monotonic() + io_timeout
        self.pending = bytearray()
        # Timeouts are the kernel's (SO_SNDTIMEO / SO_RCVTIMEO on a blocking socket), not
        # Python's: a Python socket timeout polls before every send and recv, two system
        # calls and two GIL hand-offs where one does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(io_timeout))

    def start(self, seconds: float) -> None:
        """A new request began: its bytes must arrive within ``seconds``."""
        self.deadline = time.monotonic() + seconds

    def read_now(self, size: int) -> bytes | None:
        """What the socket has now, without waiting; b"" at end of stream, None when nothing yet."""
        try:
            return self._sock.recv(size, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def recv(self, size: int, *flags: int) -> bytes:
        if self.pending:
            data = bytes(self.pending[:size])
            del self.pending[:size]
            return data
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise NoMoreData(b"")
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(left))
        try:
            return self._sock.recv(size, *flags)
        except (BlockingIOError, TimeoutError):  # the kernel's receive timeout
            logging.getLogger("gunicorn.error").info("request body not received within the deadline: closed")
            raise NoMoreData(b"") from None

    def send(self, data: bytes, *flags: int) -> int:
        return self._sock.send(data, *flags)

    def sendall(self, data: bytes, *flags: int) -> None:
        self._sock.sendall(data, *flags)

    def fileno(self) -> int:
        return self._sock.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class DoorstepWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's ``gthread`` worker, hardened against slow clients.

    Plain ``gthread`` hands a connection to a request thread as soon as one
    byte arrives, and the thread then waits for the rest with no deadline: a
    handful of clients sending a few bytes now and then (slow-loris) hold
    every thread, and connections that never send anything stay open for
    ever. Here:

    * the worker's event loop reads a request's line and headers itself, as
      they come, and hands the connection to a thread only once they are
      whole (or too big, for gunicorn to refuse), so slow clients hold no
      thread;
    * they must be whole within ``request_timeout`` seconds of their first
      byte, and a new connection must send its first byte within
      ``request_timeout`` seconds; otherwise the connection is closed;
    * a body must arrive within the same deadline (reading it does hold a
      thread; a reverse proxy that buffers bodies, as nginx does, makes that
      moot);
    * the ``Server`` header is the ``server_header`` setting.
    """

    #: Set by :class:`DoorstepServer` from :class:`ServerSettings`.
    request_timeout: float = ServerSettings.request_timeout
    server_header: str = ServerSettings.server_header

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # connections waiting for (the rest of) a request head, oldest deadline first
        self._heads: collections.deque[TConn] = collections.deque()
        cfg = self.cfg
        self._max_head = cfg.limit_request_line + 4 + (cfg.limit_request_fields or 32768) * (
            (cfg.limit_request_field_size or 8190) + 2) + 2

    def init_process(self) -> None:
        # gunicorn writes "Server: <gunicorn.http.wsgi.SERVER>" on every response
        gunicorn_wsgi.SERVER = self.server_header
        super().init_process()

    def accept(self, server: Any, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        conn = TConn(self.cfg, sock, client, server)  # makes the socket non-blocking
        conn.sock = _DeadlineSocket(sock, self.request_timeout)  # before the parser is made
        conn.timeout = time.time() + self.request_timeout  # its first byte's deadline
        self.nr_conns += 1
        with self._lock:
            self._heads.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))

    def _drop(self, conn: TConn) -> None:
        """Close a connection waiting in the event loop (called on the loop's thread)."""
        with self._lock:
            try:
                self.poller.unregister(conn.sock)
            except (OSError, KeyError, ValueError):
                pass
            for queue in (self._heads, self._keep):
                try:
                    queue.remove(conn)
                except ValueError:
                    pass
        self.nr_conns -= 1
        conn.close()

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        sock: _DeadlineSocket = conn.sock
        chunk = sock.read_now(65536)
        if chunk is None:  # nothing after all
            return
        if not chunk:  # the client closed
            self._drop(conn)
            return
        first = not sock.pending
        scanned = max(0, len(sock.pending) - 3)  # look for the blank line in the new bytes only
        sock.pending += chunk
        if sock.pending.find(b"\r\n\r\n", scanned) < 0 and len(sock.pending) <= self._max_head:
            if first:  # a request's first byte: its deadline starts; wait for the rest without a thread
                sock.start(self.request_timeout)
                with self._lock:
                    for queue in (self._keep, self._heads):
                        try:
                            queue.remove(conn)
                        except ValueError:
                            pass
                    conn.timeout = time.time() + self.request_timeout
                    self._heads.append(conn)
            return
        if first:  # the whole head at once (the usual case): its deadline for a body starts now
            sock.start(self.request_timeout)
        with self._lock:  # (murder_keepalived runs on this thread too: no race)
            self.poller.unregister(client)
            for queue in (self._keep, self._heads):
                try:
                    queue.remove(conn)
                except ValueError:
                    pass
        self.enqueue_req(conn)

    def murder_keepalived(self) -> None:
        now = time.time()
        while True:
            with self._lock:
                if not self._heads or self._heads[0].timeout > now:
                    break
                conn = self._heads[0]
            log_name = "request head" if conn.sock.pending else "first byte"
            logging.getLogger("gunicorn.error").info("%s not received within %g s: closed", log_name,
                                                     self.request_timeout)
            self._drop(conn)
        super().murder_keepalived()


# --------------------------------------------------------------------------- #
# The application
# --------------------------------------------------------------------------- #
def _worker_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in a worker that stops: close its app's services (job
    runner, webhook, store). A planning job still running there is left to
    the reaper of the next process (it is failed, never half-published)."""
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("doorstep")
    if services is not None:
        try:
            services.close()
        except Exception:  # shutting down anyway
            log.exception("closing the app's services")


class DoorstepServer(BaseApplication):  # type: ignore[misc]
    """gunicorn running the app that ``factory`` builds, once per worker."""

    def __init__(self, factory: Callable[[], Flask], settings: ServerSettings) -> None:
        from app.api import import_views

        self.factory = factory
        self.settings = settings
        import_views()  # in the master: every worker forks with the views imported, none builds them again
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.settings.gunicorn_options().items():
            self.cfg.set(name, value)
        DoorstepWorker.request_timeout = self.settings.request_timeout
        DoorstepWorker.server_header = self.settings.server_header

    def load(self) -> Any:
        """The WSGI callable of a new app (called in each worker after the fork)."""
        app = self.factory()
        if self.settings.proxy_hops:
            from werkzeug.middleware.proxy_fix import ProxyFix

            hops = self.settings.proxy_hops
            wrapped = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)
            app.wsgi_app = wrapped  # type: ignore[method-assign]
        return app
