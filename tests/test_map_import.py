"""`doorstep map import` on the Monaco extract: the indexes are built once and a
service started with ``--map`` loads them (solver.geo.mapimport)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from solver.geo.mapimport import import_map, resolve_map
from solver.geo.network import NetworkStore

ROOT = Path(__file__).resolve().parents[1]
MONACO = ROOT.parent / "shared" / "maps" / "monaco.osm.pbf"

pytestmark = pytest.mark.skipif(not MONACO.is_file(), reason="no ../shared/maps/monaco.osm.pbf")


@pytest.fixture(scope="module")
def cli_import(tmp_path_factory) -> tuple[Path, str]:
    """``doorstep map import`` of Monaco into a store of this module's (the store and the command's
    output): the extract is read and its street graph, road network and gazetteer built and stored
    once here; the API import below goes into the same store."""
    store = tmp_path_factory.mktemp("index-store")
    result = CliRunner().invoke(main, ["map", "import", str(MONACO), "--name", "monaco"],
                                env={"DOORSTEP_INDEX_DIR": str(store)})
    assert result.exit_code == 0, result.output
    return store, result.output


def test_import_summarises_and_stores_the_map(cli_import):
    # the API on the store the CLI imported into: it reads the extract and builds the street graph
    # again, finds the road network and gazetteer the CLI stored under the same keys, and registers
    # its own name (building them again took 1 s of CPU)
    store, _ = cli_import
    stages = []
    summary = import_map(MONACO, name="monaco-api", store_dir=store, progress=stages.append)
    assert stages == ["read", "street graph", "road network", "gazetteer", "stored"]
    assert summary.nodes > 500 and all(summary.edges[m] > 300 for m in ("drive", "ebike", "walk"))
    assert summary.addresses >= 300  # 314 objects with street + house number
    assert summary.street_names > 100
    south, west, north, east = summary.bbox
    assert 43.7 < south < north < 43.76 and 7.4 < west < east < 7.45
    assert NetworkStore(store).keys() == [summary.network_key]
    assert len(list(store.glob("gazetteer-*.pickle"))) == 1
    assert resolve_map("monaco-api", store_dir=store) == MONACO.resolve()
    registry = json.loads((store / "maps.json").read_text())
    assert registry["monaco-api"]["network_key"] == summary.network_key == registry["monaco"]["network_key"]


def test_cli_import_then_a_process_on_that_map_loads_instead_of_building(cli_import):
    tmp_path, output = cli_import
    env = {"DOORSTEP_INDEX_DIR": str(tmp_path)}
    assert "map 'monaco'" in output and re.search(r"addresses 3\d\d;", output)
    script = """
from solver.geo.network import load_bundled_network
from solver.geo.network import store
from solver.geo.gazetteer import load_bundled_gazetteer
from solver.geo import gazetteerstore
import solver.geo.network.core as core
def refuse(*a, **k):
    raise SystemExit("built again")
core.RoadNetwork.__init__ = refuse
gazetteerstore.Gazetteer.__init__ = refuse
net = load_bundled_network()
gaz = load_bundled_gazetteer()
south, west, north, east = net.bounds
print(round(south, 2), round(west, 2), len(gaz.street_names()) > 100)
"""
    # DOORSTEP_MAP listed so that the runner restores it afterwards (--map sets it for child processes)
    selected = CliRunner().invoke(main, ["--map", "monaco", "map", "--help"], env={**env, "DOORSTEP_MAP": None})
    assert selected.exit_code == 0
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         env={**_env(), **env, "DOORSTEP_MAP": str(resolve_map("monaco", store_dir=tmp_path))})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["43.72", "7.41", "True"]


def test_unknown_map_name_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["--map", "atlantis", "map", "--help"], env={"DOORSTEP_INDEX_DIR": str(tmp_path)})
    assert result.exit_code != 0 and "atlantis" in result.output


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
