"""GitHub folder listing against the local stand-in: truncation, nested folders, rate limits, faults,
and the probe set built from it (names recorded, list file taken back)."""
import pytest

from tasksim.config import validate_config
from tasksim.probe import build_probe_set, read_probe
from tasksim.probe.github import (
    GitHubClient,
    GitHubError,
    GitHubRateLimitError,
    GitHubTruncatedError,
    list_folder,
    raw_file_url,
)

from fake_github import FakeGitHub, sample_names

REPO_NAME, COMMIT = "alexsax/taskonomy-sample-model-1", "eed3233b1338f74b38af6d91b37cd9e03528d5e8"


def _building(per_folder=40):
    from fake_github import SAMPLE_FOLDERS

    return {f: {n: b"x" for n in sample_names(per_folder, f)} for f in SAMPLE_FOLDERS}


def _client(gh, **kw):
    return GitHubClient(gh.url + "/api", token=kw.pop("token", ""), backoff=0.01, sleep=lambda s: None, **kw)


def test_recursive_answer_is_truncated_before_rgb_but_the_folder_walk_lists_it_all():
    with FakeGitHub(recursive_limit=300) as gh:
        gh.add_repo(REPO_NAME, COMMIT, _building(40))
        # what a recursive listing would see: cut before rgb/, and only the flag says so
        tree = _client(gh).get(f"/repos/{REPO_NAME}/git/trees/{COMMIT}?recursive=1")
        assert tree["truncated"] is True
        assert not any(e["path"].startswith("rgb/") for e in tree["tree"])
        with pytest.raises(GitHubTruncatedError, match="truncated"):
            # a tree answer marked truncated is refused, naming the URL
            gh.always_fail.clear()
            client = _client(gh)
            client.get = lambda path: tree  # the truncated answer, as if for the root tree
            client.tree(REPO_NAME, COMMIT)
        names = list_folder(REPO_NAME, COMMIT, "rgb", client=_client(gh), suffixes=(".png",))
        assert names == sorted(sample_names(40, "rgb")) and len(names) == 40
        # the root tree, then the rgb tree: never a recursive call
        walk = [p for p, _ in gh.requests if "recursive" not in p][-2:]
        assert walk[0].endswith(COMMIT) and walk[1].split("/")[-1] != COMMIT


def test_nested_folder_is_walked_component_by_component():
    with FakeGitHub() as gh:
        gh.add_repo("o/r", "c0ffee", {"data/images/rgb": {"b.png": b"1", "a.jpg": b"2", "notes.txt": b"3"},
                                      "data/other": {"z.png": b"4"}})
        client = _client(gh)
        assert list_folder("o/r", "c0ffee", "data/images/rgb", client=client, suffixes=(".png", ".jpg")) \
            == ["a.jpg", "b.png"]
        assert client.calls == 4  # root, data, data/images, data/images/rgb
        with pytest.raises(GitHubError, match="no folder 'missing' in data/images"):
            list_folder("o/r", "c0ffee", "data/images/missing", client=_client(gh))


def test_rate_limit_answer_shows_githubs_message_and_reset_time_and_never_the_token():
    with FakeGitHub() as gh:
        gh.add_repo(REPO_NAME, COMMIT, _building(4))
        gh.fault(f"/api/repos/{REPO_NAME}/git/trees/{COMMIT}", "ratelimit")
        with pytest.raises(GitHubRateLimitError) as err:
            list_folder(REPO_NAME, COMMIT, "rgb", client=_client(gh))
        msg = str(err.value)
        assert "API rate limit exceeded" in msg and "resets at" in msg and "UTC" in msg
        assert "GITHUB_TOKEN" in msg and "403" in msg
        # with a token: sent as a bearer token, not shown in the message or the client's repr
        gh.fault(f"/api/repos/{REPO_NAME}/git/trees/{COMMIT}", "ratelimit")
        secret = "ghp_secret123456"
        client = _client(gh, token=secret)
        with pytest.raises(GitHubRateLimitError) as err:
            list_folder(REPO_NAME, COMMIT, "rgb", client=client)
        assert secret not in str(err.value) and secret not in repr(client)
        assert gh.requests[-1][1].get("Authorization") == f"Bearer {secret}"


def test_token_from_environment(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "tok")
    assert GitHubClient("http://x").token == "tok"
    monkeypatch.delenv("GITHUB_TOKEN")
    assert GitHubClient("http://x").token is None


def test_server_errors_are_retried_and_a_404_is_not():
    with FakeGitHub() as gh:
        gh.add_repo(REPO_NAME, COMMIT, _building(4))
        root = f"/api/repos/{REPO_NAME}/git/trees/{COMMIT}"
        gh.fault(root, "500", "cut", "retry_after")
        assert len(list_folder(REPO_NAME, COMMIT, "rgb", client=_client(gh))) == 4
        assert gh.calls(root) == 4  # 500, cut body, 429 retry-after, then the answer
        before = len(gh.requests)
        with pytest.raises(GitHubError, match=r"HTTP 404.*no such repository"):
            list_folder(REPO_NAME, "0" * 40, "rgb", client=_client(gh))
        assert len(gh.requests) == before + 1  # tried once
        gh.always_fail[root] = "500"
        with pytest.raises(GitHubError, match="failed after 3 attempts"):
            list_folder(REPO_NAME, COMMIT, "rgb", client=_client(gh, retries=3))


def test_probe_set_from_the_stand_in_records_names_and_its_list_file_rebuilds_it(tmp_path):
    from fake_github import png_bytes

    with FakeGitHub() as gh:
        names = sample_names(30, "rgb")
        gh.add_repo(REPO_NAME, COMMIT, {"rgb": {n: (lambda n=n: png_bytes(n, 64)) for n in names},
                                        "normal": {n: b"" for n in sample_names(30, "normal")}})
        cfg = validate_config({"probe": {"n_images": 5, "urls": {"api_url": gh.url + "/api",
                                                                "raw_url": gh.url + "/raw"}},
                               "preprocessing": {"resolution": 32}})
        lst = tmp_path / "chosen.urls.txt"
        digest = build_probe_set(cfg, tmp_path / "p.h5", cache_dir=tmp_path / "cache", progress=False,
                                 list_path=lst)
        p = read_probe(tmp_path / "p.h5")
        assert len(p["ids"]) == 5 and set(p["ids"]) <= set(names) and p["api_url"] == gh.url + "/api"
        lines = [ln for ln in lst.read_text().splitlines() if not ln.startswith("#")]
        assert [ln.split()[0] for ln in lines] == [raw_file_url(REPO_NAME, COMMIT, f"rgb/{i}", gh.url + "/raw")
                                                  for i in p["ids"]]
        # a second machine: the list file alone, nothing listed
        listed = gh.calls("/api/")
        cfg2 = validate_config({"probe": {"n_images": 5, "urls": {"list_file": str(lst)}},
                                "preprocessing": {"resolution": 32}})
        assert build_probe_set(cfg2, tmp_path / "p2.h5", cache_dir=tmp_path / "cache2", progress=False) == digest
        assert gh.calls("/api/") == listed
        assert read_probe(tmp_path / "p2.h5")["ids"] == p["ids"]
        # the list file's SHA-256 is checked: a changed image on the server is refused
        gh.always_fail[f"/raw/{REPO_NAME}/{COMMIT}/rgb/{p['ids'][0]}"] = "wrong"
        with pytest.raises(Exception, match="SHA-256 mismatch"):
            build_probe_set(cfg2, tmp_path / "p3.h5", cache_dir=tmp_path / "cache3", progress=False)
        assert not (tmp_path / "p3.h5").exists()
