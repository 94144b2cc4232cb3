"""The real configuration (config/config.yaml) end to end against a local stand-in for GitHub.

The real reproduction downloads from GitHub (the probe folder's listing through the REST API, the
probe images and the Taskonomy pickles as raw files) and the encoder weights from their release
URL. None of that can be reached from these machines, so this test serves the same answers from
127.0.0.1 (tests/fake_github.py): the sample building's folders with its file names and image
size, stand-in checkpoints in the official format, the published pickles from ../shared. The
configuration is config/config.yaml itself, changed only in where its sources point and in its
size (5 tasks, 8 images, fewer resamples). Then each fault: a 500 and a body cut short succeed on
retry; a 404, a wrong checksum and a rate-limit answer fail at once with a message that names the
culprit, and leave no partial file.
"""
import json
import subprocess
import sys

import h5py
import pytest
import yaml

from tasksim.probe import choose
from tasksim.taxonomy.groundtruth import SHA256

from conftest import REPO, SHARED, snakemake_exe
from fake_github import SAMPLE_FOLDERS, FakeGitHub, label_bytes, png_bytes, sample_names

pytestmark = [pytest.mark.slow, pytest.mark.shared]

TASKS = ["normal", "depth_zbuffer", "reshading", "edge_texture", "autoencoding"]
N_IMAGES = 8


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    gt = SHARED / "taskonomy"
    if not gt.is_dir():
        pytest.skip(f"{gt} not found: the stand-in GitHub serves the Taskonomy pickles from there")
    from tasksim.zoo import write_standin_zoo

    root = tmp_path_factory.mktemp("fake_github_run")
    zoo = root / "zoo"
    manifest = write_standin_zoo(TASKS, zoo, seed=2, groups={"g3d": TASKS[:3]}, perturbation=0.2)
    real = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    repo, commit, folder = (real["probe"]["urls"][k] for k in ("repository", "commit", "folder"))
    gh = FakeGitHub(max_seconds=1500).__enter__()
    # the sample building: rgb/ as large as the real one (9,464 views), the other folders smaller
    folders = {f: {n: b"" for n in sample_names(2000 if f != folder else 9464, f)} for f in SAMPLE_FOLDERS}
    folders[folder] = {n: (lambda n=n: png_bytes(n, 512)) for n in folders[folder]}
    # every task's label of the views the probe set draws (autoencoding's label is the rgb view)
    for n in choose(sample_names(9464, folder), N_IMAGES, real["probe"]["seed"]):
        for task in TASKS:
            if task != "autoencoding":
                sub, name, data = label_bytes(task, n)
                folders[sub][name] = data
    gh.add_repo(repo, commit, folders)
    for path in zoo.glob("*.pth"):
        gh.add_file(f"weights/{path.name}", path.read_bytes())
    for rel in SHA256:
        gh.add_file(f"taskonomy/{rel}", (gt / rel).read_bytes())
    yield {"root": root, "gh": gh, "manifest": manifest, "real": real, "repo": repo, "commit": commit,
           "folder": folder, "zoo": zoo}
    gh.__exit__(None, None, None)


def _config(w, name, **change):
    """config/config.yaml, pointed at the stand-in and made small."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    gh = w["gh"]
    cfg["data_dir"], cfg["results_dir"] = str(w["root"] / name / "data"), str(w["root"] / name / "results")
    cfg["tasks"] = TASKS
    cfg["taskonomy"]["weights_source"] = gh.url + "/files/weights/"
    cfg["taskonomy"]["weights_manifest"] = str(w["manifest"])  # stand-in names carry their own SHA-256
    cfg["probe"]["n_images"] = N_IMAGES
    cfg["probe"]["urls"].update(api_url=gh.url + "/api", raw_url=gh.url + "/raw")
    cfg["taxonomy"] = {"groundtruth_source": gh.url + "/files/taskonomy/", "n_bootstrap": 20,
                       "n_bootstrap_recompute": 5, "n_permutations": 20}
    cfg["similarity"] = {"attribution": {"batch_size": N_IMAGES}}
    cfg["transferability"] = {"estimators": ["hscore", "logme", "leep", "parc"], "n_bootstrap": 2,
                              "n_permutations": 20}
    for key, value in change.items():
        cfg[key] = value
    path = w["root"] / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, cfg


def _snakemake(cfg_path, *targets, cwd):
    env = {"PATH": f"{sys.executable.rsplit('/', 1)[0]}:/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run([snakemake_exe(), "-s", str(REPO / "Snakefile"), "--cores", "2", "--configfile",
                           str(cfg_path), "-d", str(cwd), *targets], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1500)


def _chosen(w):
    return choose(sample_names(9464, w["folder"]), N_IMAGES, w["real"]["probe"]["seed"])


def test_real_config_runs_end_to_end_against_the_stand_in(world):
    w, gh = world, world["gh"]
    chosen = _chosen(w)
    weights = sorted(p.name for p in w["zoo"].glob("*.pth"))
    # transient faults on the way: each must be retried and then succeed
    gh.fault(f"/files/weights/{weights[0]}", "500")
    gh.fault(f"/raw/{w['repo']}/{w['commit']}/{w['folder']}/{chosen[0]}", "cut")
    gh.fault(f"/api/repos/{w['repo']}/git/trees/{w['commit']}", "500")
    cfg_path, cfg = _config(w, "ok")
    proc = _snakemake(cfg_path, cwd=w["root"] / "ok")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    data, res = w["root"] / "ok" / "data", w["root"] / "ok" / "results"
    # the listing walked the trees: no recursive call; the faulted files were fetched twice
    assert not any("recursive" in p for p, _ in gh.requests)
    assert gh.calls(f"/files/weights/{weights[0]}") == 2
    # (and once more by the labels: autoencoding's target is the rgb view itself)
    assert gh.calls(f"/raw/{w['repo']}/{w['commit']}/{w['folder']}/{chosen[0]}") == 3
    # downloaded weights are the stand-ins, byte for byte
    for task in TASKS:
        (src,) = w["zoo"].glob(f"{task}_encoder-*.pth")
        assert (data / "weights" / f"{task}.pth").read_bytes() == src.read_bytes()
    assert not list(data.rglob("*.part"))
    # the probe set: the deterministic choice of the real listing, its sources, a list file
    probe = data / "probe" / f"{cfg['probe']['name']}.h5"
    with h5py.File(probe) as f:
        ids = [i.decode() for i in f["ids"][()]]
        sources = [s.decode() for s in f["sources"][()]]
        assert ids == chosen and f["images"].shape == (N_IMAGES, 256, 256, 3)
        assert f.attrs["api_url"] == gh.url + "/api" and w["commit"] in f.attrs["source"]
        probe_sha = f.attrs["content_sha256"]
    assert sources == [f"{gh.url}/raw/{w['repo']}/{w['commit']}/{w['folder']}/{n}" for n in chosen]
    listed = [ln.split() for ln in (data / "probe" / f"{cfg['probe']['name']}.urls.txt").read_text().splitlines()
              if not ln.startswith("#")]
    assert [u for u, _ in listed] == sources and all(len(h) == 64 for _, h in listed)
    # provenance of the activations: the verified weights, the probe set
    with h5py.File(res / "activations" / "normal.h5") as f:
        (src,) = w["zoo"].glob("normal_encoder-*.pth")
        assert f.attrs["weights_sha256"] == src.name.split("-")[1].split(".")[0]
        assert f.attrs["probe_sha256"] == probe_sha
    # ground truth downloaded through the raw URL and verified; scores written
    assert (data / "taskonomy" / "affinities" / "all_affinities_16k.pkl").exists()
    assert (res / "scores" / "summary.csv").exists()
    # target labels: every task's label of each probe view, fetched beside it, hashes recorded;
    # the estimators scored against Taskonomy's affinities, LEEP not applicable (no class head)
    with h5py.File(data / "targets" / f"{cfg['probe']['name']}.h5") as f:
        assert json.loads(f.attrs["tasks"]) == TASKS and f.attrs["probe_sha256"] == probe_sha
    manifest = json.loads((data / "targets" / "labels" / "sha256.json").read_text())
    assert len(manifest) == N_IMAGES * len(TASKS)
    assert all(u.startswith(f"{gh.url}/raw/{w['repo']}/{w['commit']}/") for u in manifest)
    logme = json.loads((res / "transferability" / "scores" / "logme" / "encoder_output.json").read_text())
    assert logme["groundtruth"] == "Taskonomy all_affinities" and set(logme["sources"]) == set(TASKS)
    assert logme["without_own_entry"]["mean"]["spearman"] is not None
    leep = json.loads((res / "transferability" / "scores" / "leep" / "encoder_output.json").read_text())
    assert leep["n_not_applicable"] == len(TASKS) ** 2
    comparison = (res / "transferability" / "comparison.csv").read_text()
    assert "logme" in comparison and "rsa" in comparison
    # the list file rebuilds the same probe set without any listing
    api_calls = gh.calls("/api/")
    lst_path, _ = _config(w, "again")
    again = yaml.safe_load(lst_path.read_text())
    again["probe"]["urls"]["list_file"] = str(data / "probe" / f"{cfg['probe']['name']}.urls.txt")
    lst_path.write_text(yaml.safe_dump(again))
    proc = _snakemake(lst_path, str(w["root"] / "again" / "data" / "probe" / f"{cfg['probe']['name']}.h5"),
                      cwd=w["root"] / "again")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with h5py.File(w["root"] / "again" / "data" / "probe" / f"{cfg['probe']['name']}.h5") as f:
        assert f.attrs["content_sha256"] == probe_sha
    assert gh.calls("/api/") == api_calls


def _log(w, name, rule):
    logs = list((w["root"] / name / "results" / "logs").rglob(f"{rule}*.log"))
    return "\n".join(p.read_text() for p in logs)


@pytest.mark.parametrize("fault, message", [
    ("404", "HTTP 404 not found (a permanent answer, not retried)"),
    ("wrong", "SHA-256 mismatch"),
])
def test_weights_faults_fail_at_once_naming_the_file(world, fault, message):
    w, gh = world, world["gh"]
    (name,) = [p.name for p in w["zoo"].glob("edge_texture_encoder-*.pth")]
    url_path = f"/files/weights/{name}"
    gh.always_fail[url_path] = fault
    try:
        before = gh.calls(url_path)
        run = f"weights_{fault}"
        cfg_path, _ = _config(w, run)
        target = w["root"] / run / "data" / "weights" / "edge_texture.pth"
        proc = _snakemake(cfg_path, str(target), cwd=w["root"] / run)
    finally:
        del gh.always_fail[url_path]
    assert proc.returncode != 0
    text = _log(w, run, "download_weights") + proc.stdout + proc.stderr
    assert message in text and name in text, text[-3000:]
    assert gh.calls(url_path) - before == 1  # tried once: retrying would fetch the same answer
    assert not target.exists() and not list(target.parent.glob(".*part"))


def test_rate_limited_listing_fails_with_githubs_message_and_reset_time(world):
    w, gh = world, world["gh"]
    root_tree = f"/api/repos/{w['repo']}/git/trees/{w['commit']}"
    gh.fault(root_tree, "ratelimit")
    cfg_path, cfg = _config(w, "ratelimit")
    probe = w["root"] / "ratelimit" / "data" / "probe" / f"{cfg['probe']['name']}.h5"
    proc = _snakemake(cfg_path, str(probe), cwd=w["root"] / "ratelimit")
    assert proc.returncode != 0
    text = _log(w, "ratelimit", "probe_set")
    assert "API rate limit exceeded" in text and "resets at" in text and "GITHUB_TOKEN" in text, text[-3000:]
    assert not probe.exists() and not list(probe.parent.glob(".*part"))
