"""Benchmark the geo layer at city scale and print the figures.

Measures, on one core, on the synthetic city (:func:`solver.geo.synthetic.synthetic_city`,
about 55,000 directed edges):

* building the city, the :class:`~solver.geo.network.RoadNetwork` (three
  mode graphs and their snapping indexes) and the offline
  :class:`~solver.geo.gazetteer.Gazetteer` (the *index build* time);
* a 1,000 × 1,000 drive-time (and distance) matrix between random addresses,
  with the peak memory it allocated (tracemalloc) and the process's peak RSS;
  target ≤ 5 s;
* the same matrix again (served by the content-addressed cache);
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
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

from solver.geo.chain import GeocodingChain  # noqa: E402
from solver.geo.gazetteer import Gazetteer  # noqa: E402
from solver.geo.network import RoadNetwork  # noqa: E402
from solver.geo.synthetic import synthetic_city  # noqa: E402
from solver.travel import haversine_m  # noqa: E402


def one_core() -> str:
    """Pin the process (and BLAS threads) to one core; say what was done."""
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        return f"pinned to CPU {min(os.sched_getaffinity(0))}"
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return "not pinned (no sched_setaffinity)"


def timed(label: str, func, *args, **kwargs):
    start = time.perf_counter()
    value = func(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"  {label:<46} {seconds:8.3f} s")
    return value, seconds


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_matrix(city, n_points: int, seed: int, skip_networkx: bool) -> None:
    print("\nRoad network")
    net, _ = timed("RoadNetwork build (3 modes, snapping index)", RoadNetwork, city.graph)
    print(f"  drive graph: {net.node_count('drive'):,} nodes, {net.edge_count('drive'):,} edges")
    points = [a.location for a in city.addresses(n_points, seed=seed)]
    tracemalloc.start()
    matrix, seconds = timed(f"{n_points:,} x {n_points:,} drive matrix (cold)", net.matrix, points, "drive")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  peak memory allocated during the matrix: {peak / 2**20:,.0f} MiB (tracemalloc); "
          f"process peak RSS so far {peak_rss_mb():,.0f} MiB")
    print(f"  target <= 5 s: {'met' if seconds <= 5 else 'NOT MET'}")
    reachable = matrix.reachable.mean() * 100
    print(f"  reachable pairs {reachable:.1f} %, median {np.median(matrix.durations) / 60:.1f} min, "
          f"median {np.median(matrix.distances) / 1000:.2f} km")
    timed("same matrix again (content-addressed cache)", net.matrix, points, "drive")
    snaps = net.snap(points, "drive")
    gaps = np.array([s.distance_m for s in snaps])
    print(f"  snap distance: median {np.median(gaps):.1f} m, max {gaps.max():.1f} m, "
          f"flagged {sum(s.flagged for s in snaps)}")
    if skip_networkx:
        return
    g = net.to_networkx("drive")
    rng = np.random.default_rng(seed)
    nodes = list(g.nodes)
    sample = [nodes[int(k)] for k in rng.choice(len(nodes), size=10, replace=False)]
    start = time.perf_counter()
    for source in sample:
        nx.single_source_dijkstra_path_length(g, source, weight="travel_time")
    per_source = (time.perf_counter() - start) / len(sample)
    print(f"  networkx per-source Dijkstra: {per_source * 1000:.0f} ms/source "
          f"-> ~{per_source * n_points:.1f} s for {n_points:,} sources (for scale)")


def bench_geocoding(city, n_points: int, seed: int) -> None:
    print("\nOffline geocoding")
    addresses = city.addresses(n_points, seed=seed + 1)
    texts = [a.text for a in addresses]
    gaz, build_s = timed("gazetteer index build (streets, junctions)", Gazetteer, city.graph,
                         districts=city.districts)
    results, seconds = timed(f"geocode {n_points:,} addresses", lambda: [gaz.geocode(t) for t in texts])
    print(f"  target <= 2 s after the index is built: {'met' if seconds <= 2 else 'NOT MET'} "
          f"({seconds / n_points * 1000:.2f} ms/address; index build {build_s:.2f} s)")
    report(addresses, results, "street interpolation")
    houses = city.address_points(every=3)  # one house number in three is mapped
    gaz2, _ = timed(f"gazetteer with {len(houses):,} house points", Gazetteer, city.graph,
                    addresses=houses, districts=city.districts)
    results2, _ = timed(f"geocode {n_points:,} addresses (address index)", lambda: [gaz2.geocode(t) for t in texts])
    report(addresses, results2, "with address index")
    chain = GeocodingChain(gazetteer=gaz, cache=None)
    calls = []
    _, _ = timed(f"GeocodingChain.geocode_many ({n_points:,}, offline)", chain.geocode_many, texts,
                 progress=lambda done, total: calls.append(done))
    print(f"  progress callbacks: {len(calls)}")


def report(addresses, results, label: str) -> None:
    found = [r for r in results if r is not None]
    errors = np.array([haversine_m(r.location, a.location) for a, r in zip(addresses, results) if r is not None])
    precision = {p: sum(r.precision == p for r in found) for p in ("exact", "street", "intersection", "district")}
    flagged = sum(r.flagged for r in found)
    print(f"  [{label}] found {len(found) / len(results) * 100:.1f} %, error median {np.median(errors):.1f} m, "
          f"p90 {np.percentile(errors, 90):.1f} m, max {errors.max():.1f} m; {precision}; flagged {flagged}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=125, help="intersections per side of the synthetic city")
    parser.add_argument("--points", type=int, default=1000, help="matrix size and addresses to geocode")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-networkx", action="store_true", help="skip the networkx comparison")
    args = parser.parse_args()
    print(f"bench/geo.py: {one_core()}; python {sys.version.split()[0]}")
    print("\nSynthetic city")
    city, _ = timed(f"synthetic_city(size={args.size}, seed={args.seed})", synthetic_city, args.size, seed=args.seed)
    print(f"  {city.graph.number_of_nodes():,} nodes, {city.edge_count:,} directed edges, "
          f"{len(city.streets):,} street names")
    bench_matrix(city, args.points, args.seed, args.skip_networkx)
    bench_geocoding(city, args.points, args.seed)
    print(f"\nprocess peak RSS: {peak_rss_mb():,.0f} MiB")


if __name__ == "__main__":
    main()
