"""environment.yml and pyproject.toml declare the same runtime dependencies."""
import re
import tomllib

import yaml

from conftest import REPO

CONDA_NAMES = {"pytorch": "torch"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    py = {_name(d): d for d in deps}
    env = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    conda = {}
    for d in env:
        if isinstance(d, dict):
            for p in d.get("pip", []):
                conda[_name(p)] = p
        elif _name(d) not in {"python", "pip"}:
            conda[CONDA_NAMES.get(_name(d), _name(d))] = d
    assert set(conda) == set(py), \
        f"only in pyproject: {set(py) - set(conda)}; only in environment.yml: {set(conda) - set(py)}"
    for name, spec in py.items():
        bound = re.sub(r"^[A-Za-z0-9_.-]+", "", spec)
        other = re.sub(r"^[A-Za-z0-9_.-]+", "", conda[name]).replace(" ", "")
        assert bound.replace(" ", "") == other, f"{name}: pyproject {spec!r} vs environment.yml {conda[name]!r}"
