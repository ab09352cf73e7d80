"""Packaging: every package is listed, both install modes import, README and CI agree."""

from __future__ import annotations

import re
import subprocess
import tomllib
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"tinyir": "tinyir", "passes": "tinyir.passes", "backends": "tinyir.backends",
         "op_support": "tinyir.op_support"}


def test_every_package_folder_is_listed():
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    found = set()
    for folder, pkg in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([pkg, *rel.parts]))
    assert found == listed, f"missing {found - listed}, stale {listed - found}"
    assert conf["package-dir"] == {v: k for k, v in ROOTS.items()}


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [line.strip() for line in text.splitlines() if line.startswith("    python3 -m venv")]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    cmds = _readme_commands()
    assert len(cmds) == 2
    assert "tinyir check" in cmds[0] and "pytest" in cmds[1]
    assert cmds[1] in (REPO / ".ci" / "run").read_text()


@pytest.mark.parametrize("editable", [False, True], ids=["normal", "editable"])
def test_install_imports_from_outside_the_repo(tmp_path, editable):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    target = ["-e", str(REPO)] if editable else [str(REPO)]
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps",
                        *target], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    code = ("import tinyir, tinyir.passes, tinyir.backends, tinyir.op_support, tinyir.formats.tir;"
            "import tinyir.examples as e; assert e.KWS_CNN.is_file();"
            "from tinyir.formats.tir.parser import parse_tir; print(tinyir.passes.__file__)")
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    where = Path(r.stdout.strip())
    assert (REPO in where.parents) == editable
    r = subprocess.run([env_dir / "bin" / "tinyir", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and re.match(r"tinyir \d", r.stdout)


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text()
    code = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "kws_int8.tflite").stat().st_size > 0
