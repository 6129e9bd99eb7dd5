"""Matrix engines: the contraction hierarchy ("ch") against csgraph, storage, fallback, plans."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from solver.config import bundled_map_path
from solver.geo.network import NetworkStore, RoadNetwork, ch, load_bundled_graph
from solver.geo.network.chengine import hierarchy
from solver.geo.network.matrix import available_engines, resolve_engine
from solver.geo.network.store import store_key
from solver.geo.synthetic import synthetic_city
from solver.model import Location


def random_points(net: RoadNetwork, count: int, seed: int) -> list[Location]:
    """Points spread over the network's bounds (some off the streets)."""
    south, west, north, east = net.bounds
    rng = np.random.default_rng(seed)
    return [Location(lat=float(a), lon=float(b))
            for a, b in zip(rng.uniform(south, north, count), rng.uniform(west, east, count))]


def same_matrices(a, b) -> None:
    np.testing.assert_array_equal(a.reachable, b.reachable)
    np.testing.assert_array_equal(a.durations, b.durations)
    np.testing.assert_array_equal(a.distances, b.distances)


@pytest.fixture(scope="module")
def bundled() -> RoadNetwork:
    return RoadNetwork(load_bundled_graph(), engine="ch")


def test_ch_is_the_default_when_numba_is_installed(bundled):
    assert "ch" in available_engines()
    assert resolve_engine(None) == resolve_engine("auto") == "ch"
    assert bundled.engine == "ch"


@pytest.mark.parametrize("mode", ["drive", "ebike", "walk"])
def test_ch_matrix_equals_csgraph_on_the_bundled_map(bundled, mode):
    points = random_points(bundled, 80, seed=5)
    points += points[:3]  # identical points share a row
    reference = RoadNetwork(load_bundled_graph(), engine="csgraph")
    same_matrices(bundled._compute_matrix(bundled.mode_graph(mode), *latlon(points)),
                  reference._compute_matrix(reference.mode_graph(mode), *latlon(points)))


def latlon(points: list[Location]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([p.lat for p in points]), np.array([p.lon for p in points])


def test_ch_matrix_equals_csgraph_on_a_synthetic_city_with_one_way_couplets():
    city = synthetic_city(14, seed=3)
    assert any(data.get("oneway") for _, _, data in city.graph.edges(data=True))
    points = [a.location for a in city.addresses(150, seed=2)]
    by_ch = RoadNetwork(city.graph, engine="ch")
    by_csgraph = RoadNetwork(city.graph, engine="csgraph")
    for mode in ("drive", "ebike"):
        same_matrices(by_ch.matrix(points, mode), by_csgraph.matrix(points, mode))


def test_hierarchy_queries_equal_dijkstra_with_unreachable_pairs_and_one_way_edges():
    """A random directed graph with several components, one-way edges and ties."""
    rng = np.random.default_rng(11)
    n, m = 400, 1100
    tail = rng.integers(0, n, m)
    head = rng.integers(0, n, m)
    weight = rng.integers(1, 40, m).astype(np.int64) * 2**26 + rng.integers(0, 5000, m)
    keep = tail != head
    tail, head, weight = tail[keep], head[keep], weight[keep]
    key = tail * n + head  # one edge per ordered pair: the lightest
    order = np.lexsort((weight, key))
    _, first = np.unique(key[order], return_index=True)
    tail, head, weight = tail[order][first], head[order][first], weight[order][first]
    h = ch.build(n, tail, head, weight, ch.CHParams(witness_settled=5, priority_settled=3))
    sources = rng.choice(n, 60, replace=False)
    targets = rng.choice(n, 70, replace=False)
    one = np.arange(61, dtype=np.int64)
    got = ch.many_to_many(h, (one, sources.astype(np.int64), np.zeros(60, np.int64)),
                          (np.arange(71, dtype=np.int64), targets.astype(np.int64), np.zeros(70, np.int64)),
                          ch.CHParams(threads=2))
    graph = csr_matrix((weight.astype(float), (tail, head)), shape=(n, n))
    want = dijkstra(graph, directed=True, indices=sources)[:, targets]
    unreachable = ~np.isfinite(want)
    assert unreachable.any() and (~unreachable).any()
    np.testing.assert_array_equal(got >= ch.INF, unreachable)
    np.testing.assert_array_equal(got[~unreachable], want[~unreachable].astype(np.int64))


def _random_graph(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random directed graph (one edge per ordered pair, the lightest) with packed-like weights."""
    tail = rng.integers(0, n, m)
    head = rng.integers(0, n, m)
    weight = rng.integers(1, 40, m).astype(np.int64) * 2**26 + rng.integers(0, 5000, m)
    keep = tail != head
    tail, head, weight = tail[keep], head[keep], weight[keep]
    key = tail * n + head
    order = np.lexsort((weight, key))
    _, first = np.unique(key[order], return_index=True)
    return tail[order][first], head[order][first], weight[order][first]


@pytest.mark.parametrize("dial_buckets", [4096, 0])  # Dial's buckets, then a binary heap
def test_dijkstra_many_to_many_equals_csgraph_from_weighted_sets(dial_buckets):
    """Sources leave from sets of nodes and targets are entered from sets, as snapped points are."""
    rng = np.random.default_rng(12)
    n, m, k_s, k_t = 300, 900, 40, 50
    tail, head, weight = _random_graph(rng, n, m)
    s_owner = np.concatenate([rng.integers(0, k_s - 1, 70), [0]])  # the last source has no start node
    s_node, s_w = rng.integers(0, n, s_owner.size), rng.integers(1, 30 * 2**26, s_owner.size)
    t_owner = rng.integers(0, k_t, 90)
    t_node, t_w = rng.integers(0, n, t_owner.size), rng.integers(1, 30 * 2**26, t_owner.size)
    graph = ch.csr_rows(n, tail, head, weight)
    params = ch.CHParams(threads=2, dial_buckets=dial_buckets)
    assert (ch.dijkstra.bucket_layout(graph[2], s_w, params)[0] > 0) == (dial_buckets > 0)
    got = ch.dijkstra_many_to_many(graph, ch.csr_rows(k_s, s_owner, s_node, s_w), ch.csr_rows(n, t_node, t_owner, t_w), k_t,
                                   params)
    # the same on an explicit graph: source i is node n + i, target j node n + k_s + j
    size = n + k_s + k_t
    rows = np.concatenate([tail, n + s_owner, t_node])
    cols = np.concatenate([head, s_node, n + k_s + t_owner])
    weights = np.concatenate([weight, s_w, t_w]).astype(float)
    key = rows * size + cols  # parallel edges: csr_matrix would add them up, keep the lightest
    order = np.lexsort((weights, key))
    _, first = np.unique(key[order], return_index=True)
    rows, cols, weights = rows[order][first], cols[order][first], weights[order][first]
    explicit = csr_matrix((weights, (rows, cols)), shape=(size, size))
    want = dijkstra(explicit, directed=True, indices=n + np.arange(k_s))[:, n + k_s:]
    unreachable = ~np.isfinite(want)
    assert unreachable.any() and (~unreachable).any() and unreachable[-1].all()
    np.testing.assert_array_equal(got >= ch.INF, unreachable)
    np.testing.assert_array_equal(got[~unreachable], want[~unreachable].astype(np.int64))
    one = ch.dijkstra_many_to_many(graph, ch.csr_rows(k_s, s_owner, s_node, s_w), ch.csr_rows(n, t_node, t_owner, t_w), k_t,
                                   ch.CHParams(threads=1, dial_buckets=dial_buckets))
    np.testing.assert_array_equal(one, got)


def test_dijkstra_uses_buckets_only_when_edge_weights_spread_little():
    params = ch.CHParams(dial_buckets=10)
    layout = ch.dijkstra.bucket_layout
    assert layout(np.array([4, 9, 12]), np.array([3]), params) == (4, 5)  # 12 // 4 + 2 buckets
    assert layout(np.array([4, 9, 12]), np.array([30]), params) == (4, 9)  # a start weight counts too
    assert layout(np.array([1, 9, 12]), np.array([3]), params) == (0, 0)  # 14 buckets: the heap
    assert layout(np.array([0, 9]), np.array([3]), params) == (0, 0)  # a zero-weight edge
    assert layout(np.array([4, 9]), np.array([3]), ch.CHParams(dial_buckets=0)) == (0, 0)
    # a zero-weight edge is searched with the heap, and exactly
    graph = (np.array([0, 1, 2, 2]), np.array([1, 0]), np.array([0, 5]))
    got = ch.dijkstra_many_to_many(graph, (np.array([0, 1]), np.array([0]), np.array([3])),
                                   (np.array([0, 0, 1]), np.array([0]), np.array([2])), 1)
    assert got.tolist() == [[5]]


def test_one_and_two_threads_give_the_same_matrix(bundled):
    g = bundled.mode_graph("drive")
    h = hierarchy(g)
    rng = np.random.default_rng(1)
    nodes = rng.choice(g.size, 50, replace=False).astype(np.int64)
    start = np.arange(51, dtype=np.int64)
    spaces = (start, nodes, np.zeros(50, np.int64))
    one = ch.many_to_many(h, spaces, spaces, ch.CHParams(threads=1))
    two = ch.many_to_many(h, spaces, spaces, ch.CHParams(threads=2))
    np.testing.assert_array_equal(one, two)
    assert (np.diag(one) == 0).all()


def test_the_hierarchy_is_stored_with_the_network_and_read_back(tmp_path):
    net = RoadNetwork(load_bundled_graph())
    store = NetworkStore(tmp_path)
    key = store_key("bundled-test", net.settings)
    store.save(key, net)
    points = random_points(net, 40, seed=9)
    first = store.load(key, engine="ch")
    expected = first.matrix(points, "drive")
    files = sorted(p.name for p in store.path(key).glob("drive.ch1.*"))
    assert "drive.ch1.json" in files and len(files) == 7
    second = store.load(key, engine="ch", matrix_cache_size=0)
    g = second.mode_graph("drive")
    assert "ch" not in g.lazy
    same_matrices(second.matrix(points, "drive"), expected)
    stored = hierarchy(g)
    assert "ch" in g.lazy and stored.edge_count == hierarchy(first.mode_graph("drive")).edge_count
    assert not [p for p in store.path(key).iterdir() if p.name.startswith(".")]


def test_csgraph_is_used_when_numba_does_not_import(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # "import numba" now raises ImportError
    assert "ch" not in available_engines()
    assert resolve_engine("ch") == resolve_engine("auto") == "csgraph"
    net = RoadNetwork(load_bundled_graph())
    assert net.engine == "csgraph"
    points = random_points(net, 10, seed=3)
    assert net.matrix(points, "drive").reachable.any()


def test_plans_name_the_ch_engine(tmp_path):
    from solver import solve
    from solver.geo.network import stored_network
    from tests.factories import problem

    net = stored_network(bundled_map_path(), store_dir=tmp_path)
    branch = {"location": {"lat": 31.2305, "lon": 121.4737}}
    visits = [{"id": f"v{i}", "addresses": [{"location": {"lat": 31.2305 + 0.002 * i, "lon": 121.4737}}]}
              for i in range(1, 4)]
    agents = [{"id": "c", "shift": {"start": "08:00", "end": "18:00"}, "start": branch, "travel_mode": "drive"}]
    plan = solve(problem(visits, agents, time_limit_s=1), net)
    assert plan.solver.matrix_engine == net.engine == "ch"


def test_map_import_prepares_every_modes_hierarchy(tmp_path):
    from solver.geo.network.chengine import prepare_hierarchies

    net = RoadNetwork(load_bundled_graph())
    store = NetworkStore(tmp_path)
    key = store_key("bundled-prepare", net.settings)
    store.save(key, net)
    loaded = store.load(key)
    assert prepare_hierarchies(loaded) == ["drive", "ebike", "walk"]
    assert sorted(p.name for p in store.path(key).glob("*.ch1.json")) == [
        "drive.ch1.json", "ebike.ch1.json", "walk.ch1.json"]
    assert prepare_hierarchies(store.load(key, engine="csgraph")) == []


def _matrix_in_child(net: RoadNetwork, points: list[Location], queue) -> None:
    queue.put(net.matrix(points, "drive").durations.tolist())


def test_a_forked_child_computes_matrices_after_its_parent(bundled):
    """Work horses and job children are forked from processes that already priced matrices."""
    import multiprocessing

    points = random_points(bundled, 30, seed=4)
    bundled.matrix(random_points(bundled, 30, seed=8), "drive")  # the parent runs its threads first
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_matrix_in_child, args=(bundled, points, queue))
    child.start()
    durations = queue.get(timeout=120)
    child.join(timeout=30)
    assert child.exitcode == 0
    assert durations == bundled.matrix(points, "drive").durations.tolist()


def test_a_mode_contraction_gives_up_on_is_priced_by_dijkstra_and_said_so(monkeypatch, tmp_path):
    from solver.geo.network import chengine

    monkeypatch.setattr(chengine, "MAX_DEGREE", 3)  # every mode's core is denser than this
    city = synthetic_city(10, seed=4)
    points = [a.location for a in city.addresses(60, seed=1)]
    net = RoadNetwork(city.graph, engine="ch")
    store = NetworkStore(tmp_path)
    key = store_key("synthetic-dense", net.settings)
    store.save(key, net)
    loaded = store.load(key)
    reference = RoadNetwork(city.graph, engine="csgraph")
    same_matrices(loaded.matrix(points, "ebike"), reference.matrix(points, "ebike"))
    assert loaded.engine == "ch" and loaded.engine_label() == "ch (dijkstra for ebike)"
    assert '"unfit": true' in (store.path(key) / "ebike.ch1.json").read_text()
    same_matrices(loaded.matrix(points, "walk"), reference.matrix(points, "walk"))
    assert loaded.engine_label() == "ch (dijkstra for ebike, walk)"
    again = store.load(key)  # another process reads the verdict instead of contracting again
    assert chengine.hierarchy(again.mode_graph("ebike")) is None
    assert again.engine_label() == "ch (dijkstra for ebike)"


def _edges(g) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from solver.geo.network.chengine import base_weights

    tail, head = g.edge_ends()
    return tail, head, base_weights(g)


def test_contraction_gives_up_once_its_shortcuts_pass_the_ratio_and_dijkstra_stays_exact():
    """A one-speed grid (the e-bike graph of a synthetic city) densifies as it is contracted."""
    from solver.geo.network import chengine

    city = synthetic_city(30, seed=4)
    net = RoadNetwork(city.graph, engine="ch")
    g = net.mode_graph("ebike")
    tail, head, weight = _edges(g)
    uncapped = ch.build(g.size, tail, head, weight, ch.CHParams())
    assert uncapped.edge_count - tail.size > 1.5 * tail.size  # it would add more shortcuts than that
    assert uncapped.top_degree < chengine.MAX_DEGREE  # and the degree limit would not stop it
    with pytest.raises(ch.TooDense, match=r"shortcuts passed 1\.5 times"):
        ch.build(g.size, tail, head, weight, ch.CHParams(max_shortcut_ratio=1.5))
    assert chengine.ch_params().max_shortcut_ratio == chengine.MAX_SHORTCUT_RATIO == 1.5
    assert hierarchy(g) is None  # the engine's own settings give up too
    points = [a.location for a in city.addresses(80, seed=1)]
    reference = RoadNetwork(city.graph, engine="csgraph")
    same_matrices(net.matrix(points, "ebike"), reference.matrix(points, "ebike"))
    assert net.engine_label() == "ch (dijkstra for ebike)"


@pytest.mark.parametrize("mode", ["drive", "ebike"])
def test_the_shortcut_cap_leaves_a_hierarchy_below_it_unchanged(mode):
    """The drive graph (speeds to climb) and a small one-speed graph stay under the cap: same hierarchy."""
    g = RoadNetwork(synthetic_city(20, seed=4).graph).mode_graph(mode)
    tail, head, weight = _edges(g)
    capped = ch.build(g.size, tail, head, weight, ch.CHParams(max_degree=64, max_shortcut_ratio=1.5))
    plain = ch.build(g.size, tail, head, weight, ch.CHParams())
    for name in ("up_start", "up_head", "up_weight", "down_start", "down_tail", "down_weight"):
        np.testing.assert_array_equal(getattr(capped, name), getattr(plain, name))
    assert capped.top_degree == plain.top_degree


def test_dial_buckets_settle_nodes_improved_within_their_bucket_exactly():
    """A grid whose edges all weigh between one and two bucket widths: many nodes are improved after
    being filed and again inside one bucket, and start sets repeat nodes; buckets, heap and csgraph agree."""
    rng = np.random.default_rng(3)
    side = 30
    n = side * side
    node = np.arange(n).reshape(side, side)
    pairs = np.concatenate([np.column_stack([node[:, :-1].ravel(), node[:, 1:].ravel()]),
                            np.column_stack([node[:-1].ravel(), node[1:].ravel()])])
    tail = np.concatenate([pairs[:, 0], pairs[:, 1]])
    head = np.concatenate([pairs[:, 1], pairs[:, 0]])
    width = 1000
    weight = rng.integers(width, 2 * width - 100, tail.size).astype(np.int64)
    graph = ch.csr_rows(n, tail, head, weight)
    k = 25
    s_owner = np.repeat(np.arange(k), 3)
    s_node = rng.integers(0, n, s_owner.size)
    s_node[1::3] = s_node[::3]  # the same start node twice, at two weights
    s_w = rng.integers(1, 3 * width, s_owner.size)
    t_node = rng.integers(0, n, k)
    sources, entries = ch.csr_rows(k, s_owner, s_node, s_w), ch.csr_rows(n, t_node, np.arange(k), np.full(k, 7))
    assert ch.dijkstra.bucket_layout(graph[2], s_w, ch.CHParams())[0] == width
    by_buckets = ch.dijkstra_many_to_many(graph, sources, entries, k, ch.CHParams(threads=1))
    by_heap = ch.dijkstra_many_to_many(graph, sources, entries, k, ch.CHParams(threads=1, dial_buckets=0))
    np.testing.assert_array_equal(by_buckets, by_heap)
    full = dijkstra(csr_matrix((weight.astype(float), (tail, head)), shape=(n, n)), directed=True)
    want = np.full((k, k), np.inf)
    for i in range(k):
        for a in range(3 * i, 3 * i + 3):
            want[i] = np.minimum(want[i], s_w[a] + full[s_node[a], t_node] + 7)
    np.testing.assert_array_equal(by_buckets, want.astype(np.int64))


def test_warming_a_network_loads_each_modes_kernels_hierarchy_and_segment_index(tmp_path):
    """What a worker does before forking work horses: they inherit all of it (and the matrices are the same)."""
    from app.jobs.travel import warm_travel
    from solver.geo.network import chengine
    from solver.geo.network.ch import dijkstra as dijkstra_module
    from solver.geo.network.ch import query as query_module
    from solver.travel import StraightLineTravel

    city = synthetic_city(30, seed=4)  # contraction gives up on its e-bike and walking graphs, not on driving
    net = RoadNetwork(city.graph, engine="ch")
    store = NetworkStore(tmp_path)
    key = store_key("synthetic-warm", net.settings)
    store.save(key, net)
    loaded = store.load(key)
    assert warm_travel(StraightLineTravel()) >= 0  # nothing to warm
    assert warm_travel(loaded) > 0
    for mode in ("drive", "ebike", "walk"):
        lazy = loaded.mode_graph(mode).lazy
        assert "seg_tree" in lazy and "ch" in lazy  # segment index and hierarchy (or the verdict) held
        assert (store.path(key) / f"{mode}.ch1.json").exists()  # and stored for every later process
    assert isinstance(loaded.mode_graph("drive").lazy["ch"], ch.Hierarchy)
    assert loaded.engine_label() == "ch (dijkstra for ebike, walk)"
    assert query_module._source_rows.signatures and dijkstra_module._rows.signatures  # loaded in this process
    assert chengine.warm(loaded) == ["drive", "ebike", "walk"]
    points = [a.location for a in city.addresses(40, seed=1)]
    reference = RoadNetwork(city.graph, engine="csgraph")
    for mode in ("drive", "ebike", "walk"):
        same_matrices(loaded.matrix(points, mode), reference.matrix(points, mode))
