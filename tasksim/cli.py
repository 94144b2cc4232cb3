"""The ``tasksim`` console command: version, the similarity methods, scoring a user's matrix.

::

    tasksim --version
    tasksim methods
    tasksim score MATRIX.csv [--kind similarity|transferability] [--groundtruth DIR_OR_URL]
                             [--output SCORES.csv] [--all-k]

A thin adapter: the listing comes from :func:`tasksim.config.similarity_methods`, the scoring
from :mod:`tasksim.taxonomy.matrixscore`. Input problems (a malformed matrix, an unreadable ground truth)
end with one line ``tasksim: error: <file>: <problem>`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "version", "build_parser"]

EXIT_INPUT_ERROR = 2


def version() -> str:
    """The installed package version (importlib.metadata), else ``tasksim.__version__``."""
    from importlib import metadata

    try:
        return metadata.version("tasksim")
    except metadata.PackageNotFoundError:
        from tasksim import __version__

        return __version__


class InputError(Exception):
    """A problem with the user's input, reported in one line with exit code 2."""


# ------------------------------------------------------------------------------------------------
# methods


def _fmt(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def methods_text() -> str:
    """Readable listing of every similarity method with its options and defaults."""
    from tasksim.config import similarity_methods

    out: list[str] = []
    methods = similarity_methods()
    summary = [(m["name"], m["kind"] or "-", "yes" if m["in_config"] else "no",
                "yes" if m["default_run"] else "no", m["description"] or "-") for m in methods]
    out += _table(summary, ["method", "kind", "in similarity.methods", "run by default", "description"])
    for m in methods:
        out += ["", f"{m['name']}:"]
        if m["config_options"]:
            rows = [(f"{m['section']}.{k}", _fmt(d), desc) for k, d, desc in m["config_options"]]
            out += ["  " + x for x in _table(rows, ["config key", "default", "description"])]
        elif m["in_config"]:
            out.append("  (no configuration options)")
        else:
            out.append("  (not in the pipeline configuration: usable from Python only)")
        if m["function_options"]:
            opts = ", ".join(f"{k}={v!r}" for k, v in m["function_options"].items())
            out.append(f"  Python: compute_similarity({m['name']!r}, features, {opts})")
    return "\n".join(out) + "\n"


def _cmd_methods(_args: argparse.Namespace) -> int:
    sys.stdout.write(methods_text())
    return 0


# ------------------------------------------------------------------------------------------------
# score


def _score_text(path: str, kind: str, matrix, table, source: str) -> str:
    import numpy as np

    head = (f"{path}: {kind} matrix, {matrix.shape[0]} x {matrix.shape[1]} tasks; ground truth: "
            f"Taskonomy affinities from {source} (SHA-256 verified)")
    rows = [(r.protocol, r.score, "" if r.value is None or not np.isfinite(r.value) else f"{r.value:.3f}",
             str(r.n_sources), str(r.n_targets), r.groundtruth, r.note) for r in table.itertuples()]
    return "\n".join([head, "", *_table(rows, ["protocol", "score", "value", "sources", "targets",
                                               "ground truth", "note"])]) + "\n"


def _cmd_score(args: argparse.Namespace) -> int:
    from tasksim.download import ChecksumError
    from tasksim.taxonomy import matrixscore as ms

    try:
        matrix = ms.read_task_matrix(args.matrix, args.kind)
    except ms.MatrixFileError as err:
        raise InputError(str(err)) from None
    try:
        gt = ms.load_groundtruth(args.groundtruth, args.cache_dir)
    except (ChecksumError, OSError, ValueError) as err:
        raise InputError(f"ground truth {args.groundtruth}: {err}") from None
    tree = {"method": args.linkage, "distance": args.distance}
    table = ms.score_task_matrix(matrix, gt, args.kind, tree, args.n_clusters, args.all_k)
    sys.stdout.write(_score_text(args.matrix, args.kind, matrix, table, args.groundtruth))
    if args.output:
        out = Path(args.output)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(out, index=False, float_format="%.6g")
        except OSError as err:
            raise InputError(f"{out}: cannot write the scores ({err.strerror or err})") from None
        sys.stdout.write(f"scores written to {out}\n")
    return 0


# ------------------------------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tasksim``."""
    from tasksim.taxonomy.groundtruth import DEFAULT_SOURCE
    from tasksim.taxonomy.matrixscore import KINDS, TREE_DEFAULTS
    from tasksim.taxonomy.trees import DISTANCES, LINKAGES

    p = argparse.ArgumentParser(
        prog="tasksim",
        description="Task taxonomies from model similarity. The pipeline itself runs with "
                    "snakemake (see README.md); this command lists the similarity methods and "
                    "scores a task matrix of your own against the Taskonomy affinities.")
    p.add_argument("--version", action="version", version=f"tasksim {version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    m = sub.add_parser("methods", help="list the similarity methods with their options and defaults",
                       description="List the registered similarity methods and the pipeline's "
                                   "configuration options (similarity.*) with their defaults.")
    m.set_defaults(func=_cmd_methods)
    s = sub.add_parser(
        "score", help="score a task x task similarity or source x target transferability CSV",
        description="Score a task matrix against the original Taskonomy affinities with the "
                    "published protocols: P@K/R@K (attribution paper), per-target Spearman (DDS, "
                    "with and without the target's own entry) and agreement with the Taskonomy "
                    "task tree. The CSV has task names as header and as first column (taskbank "
                    "names such as rgb2depth or visualpriors names such as depth_zbuffer).")
    s.add_argument("matrix", metavar="MATRIX.csv", help="the matrix (header = tasks, first column = tasks)")
    s.add_argument("--kind", choices=KINDS, default="similarity",
                   help="similarity: task x task, square, column t read for target t (default); "
                        "transferability: rows = sources, columns = targets, higher = better")
    s.add_argument("--groundtruth", default=DEFAULT_SOURCE, metavar="DIR_OR_URL",
                   help="Taskonomy results/ folder: a local mirror directory, a file:// URL or an "
                        "http(s) URL base (default: the pinned StanfordVL/taskonomy commit)")
    s.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="where downloaded ground-truth files are kept (default: "
                        "$XDG_CACHE_HOME/tasksim/taskonomy or ~/.cache/tasksim/taskonomy)")
    s.add_argument("--output", metavar="FILE.csv", help="also write the table as CSV")
    s.add_argument("--all-k", action="store_true", help="list P@K and R@K for every K (default: K = 1, 5)")
    s.add_argument("--linkage", choices=LINKAGES, default=TREE_DEFAULTS["method"],
                   help="linkage of a similarity matrix's tree (default: %(default)s, the RSA paper)")
    s.add_argument("--distance", choices=DISTANCES, default=TREE_DEFAULTS["distance"],
                   help="distance between tasks of a similarity matrix's tree (default: %(default)s)")
    s.add_argument("--n-clusters", type=int, default=4,
                   help="clusters of the tree cuts compared by the adjusted Rand index (default: 4)")
    s.set_defaults(func=_cmd_score)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tasksim`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "n_clusters", 2) < 2:
        parser.error(f"--n-clusters must be at least 2, got {args.n_clusters}")
    try:
        return args.func(args)
    except InputError as err:
        print(f"tasksim: error: {err}", file=sys.stderr)
        return EXIT_INPUT_ERROR


if __name__ == "__main__":  # python -m tasksim.cli
    sys.exit(main())
