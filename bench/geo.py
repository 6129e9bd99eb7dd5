"""Benchmark the geo layer at city scale and print the figures.

Measures, on one core, on the synthetic city (:func:`solver.geo.synthetic.synthetic_city`,
about 55,000 directed edges):

* building the city, the :class:`~solver.geo.network.RoadNetwork` (three
  mode graphs and their snapping indexes), storing it in an index store
  (:mod:`solver.geo.network.store`) and loading it back (memory-mapped), and
  the first snap after loading (the segment index is rebuilt lazily);
* the contraction hierarchy of the drive graph (the ``ch`` engine's, built
  once per map and stored beside the network);
* a 1,000 × 1,000 drive-time (and distance) matrix between random addresses
  with each engine of ``--engines`` side by side (csgraph first, as the
  reference), the largest difference from csgraph in seconds and metres, the
  peak memory each allocated (tracemalloc: numpy's arrays, not numba's) and
  the process's peak RSS during it; the ``ch`` engine once per thread count
  of ``--threads`` (two threads unpin the process);
* the same 1,000 × 1,000 matrix on the e-bike graph (one speed everywhere:
  contraction gives up, and the ``ch`` engine prices it by plain Dijkstra
  searches, :mod:`solver.geo.network.ch.dijkstra`) with csgraph and with the
  ``ch`` engine per thread count, and the largest difference (skip with
  ``--skip-ebike``);
* a fresh process (as a worker's job child): import, load from the store and
  the same matrix with the default engine, with that process's own peak RSS,
  once per thread count;
* the same matrix again (served by the content-addressed cache);
* the gazetteer index stored and loaded back;
* offline geocoding of 1,000 addresses (house numbers, lanes, intersections,
  full-width digits) after the index is built, target ≤ 2 s, with the share
  found and the median and 90th-percentile distance to the true point,
  street-only and with an address index;
* for scale, per-source networkx Dijkstra on a sample of sources,
  extrapolated to 1,000 sources.

Usage::

    python bench/geo.py                 # the default city and 1,000 points
    python bench/geo.py --size 150 --points 2000 --seed 3
    python bench/geo.py --skip-networkx
    python bench/geo.py --size 400 --skip-networkx --engines csgraph,igraph,networkit
    python bench/geo.py --size 400 --points 1000 --skip-networkx --engines csgraph,ch --threads 1,2
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

from solver.geo.chain import GeocodingChain  # noqa: E402
from solver.geo.gazetteer import Gazetteer  # noqa: E402
from solver.geo.gazetteerstore import stored_gazetteer  # noqa: E402
from solver.geo.network import ENGINES, NetworkStore, RoadNetwork, available_engines  # noqa: E402
from solver.geo.network.store import store_key  # noqa: E402
from solver.geo.synthetic import synthetic_city  # noqa: E402
from solver.travel import haversine_m  # noqa: E402

all_cores = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
# numba sizes its thread pool by the cores the process may use when it is imported, which is after
# one_core() pins the process: without this the "2 threads" runs would get a pool of one
os.environ.setdefault("NUMBA_NUM_THREADS", str(max(1, len(all_cores))))


def one_core() -> str:
    """Pin the process (and BLAS threads) to one core; say what was done."""
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        return f"pinned to CPU {min(os.sched_getaffinity(0))}"
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return "not pinned (no sched_setaffinity)"


def set_affinity(cores) -> None:
    """Pin every thread of the process to ``cores`` (``sched_setaffinity(0, ...)`` moves only the
    calling thread: numba's worker threads, started while the process was pinned to one core,
    would stay there and two "threads" would share one core)."""
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), cores)
        except OSError:  # pragma: no cover - a thread that just ended
            pass


def timed(label: str, func, *args, **kwargs):
    start = time.perf_counter()
    value = func(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"  {label:<46} {seconds:8.3f} s")
    return value, seconds


#: The highest VmHWM read before a reset (:func:`reset_peak_rss`), MiB: Linux's ru_maxrss of a live
#: process is its VmHWM, which the reset lowers, so the process's peak is the larger of the two.
_PEAK_BEFORE_RESETS = 0.0


def peak_rss_mb() -> float:
    """The process's peak RSS so far, MiB, across :func:`reset_peak_rss` calls."""
    return max(_PEAK_BEFORE_RESETS, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


def status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory figure (VmRSS, VmHWM), MiB."""
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024.0


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); whether it worked.

    The peak so far is kept first, for :func:`peak_rss_mb`.
    """
    global _PEAK_BEFORE_RESETS
    _PEAK_BEFORE_RESETS = peak_rss_mb()
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_during(measured: bool) -> str:
    """The process's peak RSS since :func:`reset_peak_rss` (whose result is ``measured``), as printed."""
    return f"peak RSS during it {status_mb('VmHWM'):,.0f} MiB" if measured else "peak RSS not measured"


def memory(label: str) -> None:
    """Print the process's resident memory now and its peak so far."""
    print(f"  [memory after {label}: RSS {status_mb('VmRSS'):,.0f} MiB, peak {peak_rss_mb():,.0f} MiB]")


def load_average() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def build_network(city, args) -> float:
    """Build the city's road network, store it and free the built copy; returns the build time."""
    print("\nRoad network")
    net, build_s = timed("RoadNetwork build (3 modes, snapping index)", RoadNetwork, city.graph)
    print(f"  drive graph: {net.node_count('drive'):,} nodes, {net.edge_count('drive'):,} edges")
    memory("the network build")
    store = NetworkStore(args.store)
    key = store_key(f"synthetic:{args.size}:{args.seed}", net.settings)
    args.network_key = key  # [rss] for the serving process of bench_geocoding
    shutil.rmtree(store.path(key), ignore_errors=True)
    timed("store the network (.npy files)", store.save, key, net)
    del net  # from here on the stored copy serves, as in a service
    gc.collect()
    memory("storing the network (the built copy freed)")
    return build_s


def bench_matrix(points, build_s: float, args) -> None:
    """Matrices from the stored network (the city's graph is no longer held, as in a service)."""
    n_points, seed = args.points, args.seed
    print("\nTravel matrices (from the stored network)")
    store = NetworkStore(args.store)
    key = args.network_key
    loaded, load_s = timed("load it from the store (memory-mapped)", store.load, key)
    timed("first snap after loading (segment index)", loaded.snap, points[:1], "drive")
    g = loaded.mode_graph("drive")
    lats = np.array([p.lat for p in points])
    lons = np.array([p.lon for p in points])
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if "csgraph" in engines:  # the reference first
        engines.remove("csgraph")
    engines.insert(0, "csgraph")
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    if "ch" in engines and "ch" in available_engines():
        from solver.geo.network.chengine import hierarchy

        start_cpu = time.process_time()
        h, _ = timed("contraction hierarchy, drive (built, stored)", hierarchy, g)
        print(f"    {h.edge_count:,} upward edges (shortcuts included) for {g.edge_keys.size:,} edges; "
              f"cpu {time.process_time() - start_cpu:.1f} s; load average {load_average()}")
    reference = None
    figures = {}
    runs = [(e, t) for e in engines for t in (thread_counts if e == "ch" else [0])]
    for engine, threads in runs:
        if engine not in available_engines():
            print(f"  engine {engine}: not installed, skipped")
            continue
        loaded.engine = engine
        label = engine if engine != "ch" else f"ch, {threads} thread{'s' if threads > 1 else ''}"
        affinity = os.sched_getaffinity(0)
        if threads > 1:
            set_affinity(all_cores)
        os.environ["DOORSTEP_MATRIX_THREADS"] = str(threads or 1)
        measured_rss = reset_peak_rss()
        tracemalloc.start()
        start_cpu = time.process_time()
        matrix, seconds = timed(f"{n_points:,} x {n_points:,} drive matrix, {label}", loaded._compute_matrix, g,
                                lats, lons)
        cpu = time.process_time() - start_cpu
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        set_affinity(affinity)
        if reference is None:
            reference = matrix
            diff_s = diff_m = 0
        else:
            diff_s = int(np.abs(matrix.durations - reference.durations).max())
            diff_m = int(np.abs(matrix.distances - reference.distances).max())
            assert np.array_equal(matrix.reachable, reference.reachable), "reachability differs"
        figures.setdefault(engine, seconds)
        print(f"    max difference from csgraph: {diff_s} s, {diff_m} m; cpu {cpu:.2f} s; "
              f"peak allocated {peak / 2**20:,.0f} MiB (tracemalloc); {peak_during(measured_rss)}; "
              f"load average {load_average()}")
    os.environ.pop("DOORSTEP_MATRIX_THREADS", None)
    if not args.skip_ebike and "ch" in engines and "ch" in available_engines():
        bench_ebike(loaded, lats, lons, thread_counts)
        loaded.engine = "ch"
    base = figures.get("csgraph")
    if base:
        print("  ratio to csgraph: " + ", ".join(f"{e} {t / base:.2f}" for e, t in figures.items()))
    matrix = reference
    assert matrix is not None
    reachable = matrix.reachable.mean() * 100
    print(f"  reachable pairs {reachable:.1f} %, median {np.median(matrix.durations) / 60:.1f} min, "
          f"median {np.median(matrix.distances) / 1000:.2f} km")
    loaded.engine = "csgraph"
    loaded.matrix(points, "drive")
    timed("same matrix again (content-addressed cache)", loaded.matrix, points, "drive")
    snaps = loaded.snap(points, "drive")
    gaps = np.array([s.distance_m for s in snaps])
    print(f"  snap distance: median {np.median(gaps):.1f} m, max {gaps.max():.1f} m, "
          f"flagged {sum(s.flagged for s in snaps)}")
    for threads in thread_counts:
        fresh_process(args.store, key, lats, lons, threads)
    print(f"  build {build_s:.2f} s -> load from store {load_s:.3f} s")
    memory("the matrices")
    if args.skip_networkx:
        return
    nxg = loaded.to_networkx("drive")
    rng = np.random.default_rng(seed)
    nodes = list(nxg.nodes)
    sample = [nodes[int(k)] for k in rng.choice(len(nodes), size=10, replace=False)]
    start = time.perf_counter()
    for source in sample:
        nx.single_source_dijkstra_path_length(nxg, source, weight="travel_time")
    per_source = (time.perf_counter() - start) / len(sample)
    print(f"  networkx per-source Dijkstra: {per_source * 1000:.0f} ms/source "
          f"-> ~{per_source * n_points:.1f} s for {n_points:,} sources (for scale)")


def bench_ebike(loaded, lats, lons, thread_counts) -> None:
    """The e-bike matrix: csgraph, then the ``ch`` engine (its fallback where contraction gives up)."""
    from solver.geo.network.chengine import hierarchy

    g = loaded.mode_graph("ebike")
    measured_rss = reset_peak_rss()
    start_cpu = time.process_time()
    h, _ = timed("contraction hierarchy, ebike (built or given up)", hierarchy, g)
    verdict = f"{h.edge_count:,} upward edges" if h is not None else "gave up (too dense): Dijkstra prices it"
    print(f"    {verdict}; cpu {time.process_time() - start_cpu:.1f} s; {peak_during(measured_rss)}; "
          f"load average {load_average()}")
    loaded.engine = "csgraph"
    measured_rss = reset_peak_rss()
    start_cpu = time.process_time()
    reference, _ = timed(f"{lats.size:,} x {lats.size:,} ebike matrix, csgraph", loaded._compute_matrix, g, lats, lons)
    print(f"    cpu {time.process_time() - start_cpu:.2f} s; {peak_during(measured_rss)}; "
          f"load average {load_average()}")
    loaded.engine = "ch"
    for threads in thread_counts:
        affinity = os.sched_getaffinity(0)
        if threads > 1:
            set_affinity(all_cores)
        os.environ["DOORSTEP_MATRIX_THREADS"] = str(threads)
        measured_rss = reset_peak_rss()
        start_cpu = time.process_time()
        matrix, _ = timed(f"{lats.size:,} x {lats.size:,} ebike matrix, {loaded.engine_label()}, {threads} thr.",
                          loaded._compute_matrix, g, lats, lons)
        cpu = time.process_time() - start_cpu
        set_affinity(affinity)
        diff_s = int(np.abs(matrix.durations - reference.durations).max())
        diff_m = int(np.abs(matrix.distances - reference.distances).max())
        assert np.array_equal(matrix.reachable, reference.reachable), "reachability differs"
        print(f"    max difference from csgraph: {diff_s} s, {diff_m} m; cpu {cpu:.2f} s; {peak_during(measured_rss)}; "
              f"load average {load_average()}")
    os.environ.pop("DOORSTEP_MATRIX_THREADS", None)
    memory("the e-bike matrices")


_CHILD = """
import os, sys, time
import numpy as np
if {threads} > 1:
    os.sched_setaffinity(0, range(os.cpu_count()))
os.environ["DOORSTEP_MATRIX_THREADS"] = "{threads}"
sys.path.insert(0, {root!r})
start = time.perf_counter()
from solver.geo.network import NetworkStore
from solver.model import Location
net = NetworkStore({store!r}).load({key!r})
loaded = time.perf_counter()
data = np.load({points!r})
points = [Location(lat=float(a), lon=float(b)) for a, b in data]
cpu = time.process_time()
net.matrix(points, "drive")
done = time.perf_counter()
cpu = time.process_time() - cpu
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec from the parent (the bench)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
rss = int(hwm.split()[1]) / 1024.0
print(f"{{loaded - start:.3f}} {{done - loaded:.3f}} {{rss:.0f}} {{net.engine}} {{cpu:.3f}}")
"""


def fresh_process(store: str, key: str, lats, lons, threads: int) -> None:
    """A new process (a worker's job child): import, load from the store, one matrix; its peak RSS."""
    points = Path(store) / "bench-points.npy"
    np.save(points, np.column_stack([lats, lons]))
    code = _CHILD.format(root=str(ROOT), store=store, key=key, points=str(points), threads=int(threads))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    load_s, matrix_s, rss, engine, cpu = out.stdout.split()
    print(f"  fresh process ({engine}, {threads} thread{'s' if threads > 1 else ''}): import + load "
          f"{float(load_s):.2f} s, {len(lats):,}-point drive matrix (cold: snapping, hierarchy from the store) "
          f"{float(matrix_s):.2f} s (cpu {float(cpu):.2f} s), peak RSS {float(rss):,.0f} MiB; "
          f"load average {load_average()}")


def bench_geocoding(city, args) -> None:
    n_points, seed = args.points, args.seed
    print("\nOffline geocoding")
    gc.collect()  # [rss] the network of bench_matrix (cyclic references) freed before measuring
    memory("the start of geocoding")
    addresses = city.addresses(n_points, seed=seed + 1)
    texts = [a.text for a in addresses]
    gaz, build_s = timed("gazetteer index build (streets, junctions)", Gazetteer, city.graph,
                         districts=city.districts)
    store = Path(args.store)
    for old in store.glob("gazetteer-*.pickle"):
        old.unlink()
    source = f"synthetic:{args.size}:{args.seed}"
    timed("store the gazetteer index", stored_gazetteer, source, lambda: gaz, store_dir=store)
    _, load_s = timed("load the gazetteer index from the store", stored_gazetteer, source,
                      lambda: (_ for _ in ()).throw(RuntimeError("built again")), store_dir=store)
    print(f"  gazetteer build {build_s:.2f} s -> load from store {load_s:.2f} s")
    memory("the streets-only gazetteer")  # [rss]
    results, seconds = timed(f"geocode {n_points:,} addresses", lambda: [gaz.geocode(t) for t in texts])
    print(f"  target <= 2 s after the index is built: {'met' if seconds <= 2 else 'NOT MET'} "
          f"({seconds / n_points * 1000:.2f} ms/address; index build {build_s:.2f} s)")
    report(addresses, results, "street interpolation")
    gaz = results = None  # stored: the houses build below does not carry the streets-only copy (~80 MiB)
    gc.collect()
    # [rss] the house points streamed into the index (a list of 3.2 M points at size 400 took 1.1 GB)
    houses = city.iter_address_points(every=3)  # one house number in three is mapped
    gaz2, _ = timed(f"gazetteer with {city.house_point_count(every=3):,} house points", Gazetteer, city.graph,
                    addresses=houses, districts=city.districts)
    memory("the gazetteer with houses")
    results2, _ = timed(f"geocode {n_points:,} addresses (address index)", lambda: [gaz2.geocode(t) for t in texts])
    report(addresses, results2, "with address index")
    # [rss] the gazetteer with houses stored, loaded back (memory-mapped) and served by a fresh process
    houses_source = f"synthetic:{args.size}:{args.seed}:houses-every-3"
    timed("store the gazetteer with houses", stored_gazetteer, houses_source, lambda: gaz2, store_dir=store)
    gaz2 = None  # the stored copy serves from here on
    gc.collect()
    memory("storing it (the built copy freed)")
    gaz3, load3_s = timed("load it from the store (memory-mapped)", stored_gazetteer, houses_source,
                          lambda: (_ for _ in ()).throw(RuntimeError("built again")), store_dir=store)
    results3, _ = timed(f"geocode {n_points:,} addresses (loaded index)", lambda: [gaz3.geocode(t) for t in texts])
    same = all(_same_result(a, b) for a, b in zip(results2, results3))
    print(f"  loaded index answers as the built one: {'yes' if same else 'NO'}; load {load3_s:.2f} s "
          f"(target <= 3 s); load average {load_average()}")
    memory("geocoding with the loaded index")
    gaz3 = results3 = None
    args.serving = (houses_source, texts)  # measured after the matrices, once the hierarchies are stored
    gaz = stored_gazetteer(source, lambda: (_ for _ in ()).throw(RuntimeError("built again")), store_dir=store)
    chain = GeocodingChain(gazetteer=gaz, cache=None)
    calls = []
    _, _ = timed(f"GeocodingChain.geocode_many ({n_points:,}, offline)", chain.geocode_many, texts,
                 progress=lambda done, total: calls.append(done))
    print(f"  progress callbacks: {len(calls)}")
    memory("geocoding")


def _same_result(a, b) -> bool:  # [rss]
    if a is None or b is None:
        return a is b
    return (a.location, a.confidence, a.precision, a.matched, a.house_number, a.flagged) == (
        b.location, b.confidence, b.precision, b.matched, b.house_number, b.flagged)


# [rss] the serving case: a fresh process loads the stored network and gazetteer, geocodes and prices
_SERVING = """
import json, sys, time
sys.path.insert(0, {root!r})
start = time.perf_counter()
from solver.geo.gazetteerstore import stored_gazetteer
from solver.geo.network import NetworkStore
net = NetworkStore({store!r}).load({key!r})
net_loaded = time.perf_counter()
def refuse():
    raise SystemExit("the gazetteer was built again")
gaz = stored_gazetteer({source!r}, refuse, store_dir={store!r})
loaded = time.perf_counter()
texts = json.load(open({texts!r}, encoding="utf-8"))
results = [gaz.geocode(t) for t in texts]
geocoded = time.perf_counter()
points = [r.location for r in results if r is not None]
net.matrix(points, "drive")
done = time.perf_counter()
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
rss = int(hwm.split()[1]) / 1024.0
print(f"{{net_loaded - start:.3f}} {{loaded - net_loaded:.3f}} {{geocoded - loaded:.3f}} {{done - geocoded:.3f}} "
      f"{{len(points)}} {{rss:.0f}} {{net.engine}}")
"""


def serving_process(store: str, key: str, source: str, texts: list[str]) -> None:  # [rss]
    """A new process (a service): load the stored network and gazetteer, geocode, one matrix; its peak RSS."""
    import json

    path = Path(store) / "bench-texts.json"
    path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    code = _SERVING.format(root=str(ROOT), store=store, key=key, source=source, texts=str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    net_s, gaz_s, geo_s, matrix_s, n, rss, engine = out.stdout.split()
    print(f"  serving process ({engine}, 1 thread): import + network load {float(net_s):.2f} s, gazetteer load "
          f"{float(gaz_s):.2f} s, geocode {len(texts):,} {float(geo_s):.2f} s, {int(n):,}-point drive matrix "
          f"{float(matrix_s):.2f} s, peak RSS {float(rss):,.0f} MiB; load average {load_average()}")


def report(addresses, results, label: str) -> None:
    found = [r for r in results if r is not None]
    errors = np.array([haversine_m(r.location, a.location) for a, r in zip(addresses, results) if r is not None])
    precision = {p: sum(r.precision == p for r in found) for p in ("exact", "street", "intersection", "district")}
    flagged = sum(r.flagged for r in found)
    print(f"  [{label}] found {len(found) / len(results) * 100:.1f} %, error median {np.median(errors):.1f} m, "
          f"p90 {np.percentile(errors, 90):.1f} m, max {errors.max():.1f} m; {precision}; flagged {flagged}")


def return_freed_memory() -> None:
    """Have glibc hand big freed blocks back to the system, as ``MALLOC_MMAP_THRESHOLD_=131072`` does.

    glibc raises its mmap threshold after a large block is freed, so later large
    numpy arrays come from the heap and their memory stays with the process; a fixed
    threshold keeps every block of 128 KiB or more in its own mapping, returned on free.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, 131072)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=125, help="intersections per side of the synthetic city")
    parser.add_argument("--points", type=int, default=1000, help="matrix size and addresses to geocode")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-networkx", action="store_true", help="skip the networkx comparison")
    parser.add_argument("--skip-geocoding", action="store_true", help="skip the gazetteer figures")
    parser.add_argument("--skip-ebike", action="store_true", help="skip the e-bike matrix figures")
    parser.add_argument("--threads", default="1,2",
                        help="thread counts for the ch engine and the fresh process, comma-separated")
    parser.add_argument("--engines", default="csgraph,ch",
                        help=f"matrix engines to compare, comma-separated (of {', '.join(ENGINES)})")
    parser.add_argument("--store", default=None, help="index store folder (default: a temporary one)")
    args = parser.parse_args()
    return_freed_memory()
    print(f"bench/geo.py: {one_core()}; python {sys.version.split()[0]}; engines installed: "
          f"{', '.join(available_engines())}")
    cleanup = None
    if args.store is None:
        cleanup = tempfile.TemporaryDirectory(prefix="doorstep-bench-store-")
        args.store = cleanup.name
    print("\nSynthetic city")
    city, _ = timed(f"synthetic_city(size={args.size}, seed={args.seed})", synthetic_city, args.size, seed=args.seed)
    print(f"  {city.graph.number_of_nodes():,} nodes, {city.edge_count:,} directed edges, "
          f"{len(city.streets):,} street names")
    memory("the city")
    # The order keeps what a service holds: the network and the gazetteers are built from the city's
    # graph and stored, then the graph is let go and everything after runs on the stored indexes.
    build_s = build_network(city, args)
    points = [a.location for a in city.addresses(args.points, seed=args.seed)]
    if not args.skip_geocoding:
        bench_geocoding(city, args)
    # The generator's city (its networkx graph, street and geometry dicts: ~350 MiB at size 400) is let go
    # whole once the network and gazetteers are stored: no service holds one, and clearing the graph alone
    # freed ~40 MiB (its street tables kept the rest alive)
    del city
    gc.collect()
    memory("letting the city go")
    bench_matrix(points, build_s, args)
    if getattr(args, "serving", None):
        serving_process(args.store, args.network_key, *args.serving)
    print(f"\nprocess peak RSS: {peak_rss_mb():,.0f} MiB; load average {load_average()}")
    if cleanup is not None:
        cleanup.cleanup()


if __name__ == "__main__":
    main()
