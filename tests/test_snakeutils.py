"""Rule params carry only what changes a result: run settings are dropped, and the code digest
follows exactly the modules a rule's script imports."""
from pathlib import Path

import tasksim
from tasksim.snakeutils import code_digest, module_closure, result_options, run_label


def _package(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\nfrom .sub import c\nimport numpy\n")
    (pkg / "b.py").write_text("X = 1\n")
    (pkg / "sub" / "c.py").write_text("from ..b import X\n")
    (pkg / "unrelated.py").write_text("Y = 2\n")
    script = tmp_path / "rule.py"
    script.write_text("from pkg.a import something\n")
    return pkg, script


def test_code_digest_follows_the_scripts_imports_and_nothing_else(tmp_path):
    pkg, script = _package(tmp_path)
    files = module_closure(["pkg.a"], "pkg", root_dir=pkg)
    assert {f.relative_to(pkg).as_posix() for f in files} == {"__init__.py", "a.py", "b.py",
                                                                     "sub/__init__.py", "sub/c.py"}
    d0 = code_digest(script, "pkg", root_dir=pkg)
    (pkg / "unrelated.py").write_text("Y = 3\n")  # code the rule does not run
    assert code_digest(script, "pkg", root_dir=pkg) == d0
    (pkg / "sub" / "c.py").write_text("from ..b import X\nZ = X + 1\n")  # imported two steps away
    d1 = code_digest(script, "pkg", root_dir=pkg)
    assert d1 != d0
    script.write_text("from pkg.a import something  # the script itself\n")
    assert code_digest(script, "pkg", root_dir=pkg) != d1


def test_glue_modules_are_left_out_of_the_digest(tmp_path):
    root = Path(tasksim.__file__).parent
    files = {p.relative_to(root).as_posix() for p in module_closure(["tasksim.snakeutils", "tasksim.probe"])}
    assert {"probe/__init__.py", "probe/github.py", "download.py"} <= files
    assert "snakeutils.py" not in files and "config.py" not in files


class _Job:
    config = {"results_dir": "results/demo", "probe": {"name": "mini_scenes"}}


def test_run_settings_are_not_result_options_and_the_run_label_comes_from_outputs():
    assert result_options({"batch_size": 8, "threads": 4, "mem_mb": 100}) == {"batch_size": 8}
    assert run_label(_Job()) == "results/demo, probe set 'mini_scenes'"
