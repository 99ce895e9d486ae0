"""A non-editable install works: the wheel holds every code folder under the one `songmix`
namespace (and the SQL migrations), and nothing under generic names like `tasks`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out),
                    str(ROOT)], check=True, timeout=300)
    return next(out.glob("songmix-*.whl"))


def test_the_wheel_installs_everything_under_the_songmix_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.startswith("songmix-")}
    assert top_level == {"songmix"}
    for expected in ("songmix/em/gmm.py", "songmix/tasks/audio.py", "songmix/flows/pipeline.py",
                     "songmix/warehouse/migrations/001_initial.sql", "songmix/cli/main.py",
                     "songmix/sources/demo_server.py", "songmix/audio/features.py",
                     "songmix/analysis/agreement.py"):
        assert expected in names


def test_the_installed_wheel_runs_outside_the_source_tree(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(site), str(wheel)], check=True, timeout=300)
    probe = (
        "import songmix.em, songmix.warehouse.store as store\n"
        f"assert songmix.em.__file__.startswith({str(site)!r}), songmix.em.__file__\n"
        "store.Warehouse('w.duckdb')\n"
        "import duckdb\n"
        "print(duckdb.connect('w.duckdb').execute('select count(*) from tracks').fetchone()[0])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
