"""Verified downloads: checksum mismatch, truncation, mirrors, file:// URLs, atomicity."""
import hashlib
import http.server
import threading

import pytest

from tasksim.download import ChecksumError, fetch, resolve


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_local_file_and_file_url_and_mirror(tmp_path):
    data = b"weights" * 1000
    src = tmp_path / "mirror" / "x_encoder.pth"
    src.parent.mkdir()
    src.write_bytes(data)
    for i, source in enumerate([str(src), src.as_uri(), str(src.parent)]):
        dest = tmp_path / f"out{i}.pth"
        fetch(source, dest, _sha(data), filename="x_encoder.pth" if i == 2 else None)
        assert dest.read_bytes() == data


def test_checksum_mismatch_names_file_and_hashes_and_leaves_nothing(tmp_path):
    src = tmp_path / "a.pth"
    src.write_bytes(b"abc")
    dest = tmp_path / "out" / "a.pth"
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as err:
        fetch(str(src), dest, wrong)
    msg = str(err.value)
    assert "a.pth" in msg and wrong in msg and _sha(b"abc") in msg
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no temporary file left behind


def test_missing_source_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        fetch(str(tmp_path / "nope.pth"), tmp_path / "o", None)


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b"x" * 10000
    truncate_first = 0
    calls = 0

    def do_GET(self):  # noqa: N802
        type(self).calls += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        if type(self).calls <= type(self).truncate_first:
            self.wfile.write(self.payload[:100])  # announced 10000, sends 100: truncated transfer
        else:
            self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    _Handler.calls = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield httpd
    httpd.shutdown()


def test_truncated_download_is_retried_then_verified(server, tmp_path):
    _Handler.truncate_first = 1
    url = f"http://127.0.0.1:{server.server_address[1]}/w_encoder.pth"
    dest = tmp_path / "w.pth"
    fetch(url, dest, _sha(_Handler.payload), retries=3, backoff=0.01)
    assert dest.read_bytes() == _Handler.payload and _Handler.calls == 2


def test_persistently_truncated_download_fails_and_leaves_nothing(server, tmp_path):
    _Handler.truncate_first = 99
    url = f"http://127.0.0.1:{server.server_address[1]}/w_encoder.pth"
    dest = tmp_path / "w.pth"
    with pytest.raises(OSError, match="failed after 2 attempts"):
        fetch(url, dest, _sha(_Handler.payload), retries=2, backoff=0.01)
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_resolve_mirror_and_url_prefix(tmp_path):
    assert resolve("https://h/p/", "f.pth") == "https://h/p/f.pth"
    assert resolve(tmp_path.as_uri() + "/", "f.pth") == str(tmp_path / "f.pth")
    assert resolve(str(tmp_path), "f.pth") == str(tmp_path / "f.pth")


def test_local_checksum_message_says_the_source_was_left_in_place(tmp_path):
    src = tmp_path / "a.pth"
    src.write_bytes(b"abc")
    with pytest.raises(ChecksumError, match=r"source file .*a.pth was left as it is and .*out.pth was not written"):
        fetch(str(src), tmp_path / "out.pth", "0" * 64)
    assert src.read_bytes() == b"abc"


def _fake(**faults):
    from fake_github import FakeGitHub

    gh = FakeGitHub(max_seconds=120)
    gh.add_file("w.pth", b"w" * 5000)
    for path, kinds in faults.items():
        gh.fault(f"/files/{path}", *kinds)
    return gh


def test_permanent_faults_are_tried_once(tmp_path):
    from tasksim.download import PermanentDownloadError

    with _fake() as gh:
        with pytest.raises(PermanentDownloadError, match=r"missing.pth failed: HTTP 404 not found"):
            fetch(gh.url + "/files/missing.pth", tmp_path / "m.pth", None, backoff=0.01)
        assert gh.calls("/files/missing.pth") == 1
        # a wrong checksum of a download is not retried either: the server would send the same bytes
        with pytest.raises(ChecksumError, match="downloaded bytes were discarded"):
            fetch(gh.url + "/files/w.pth", tmp_path / "w.pth", "0" * 64, backoff=0.01)
        assert gh.calls("/files/w.pth") == 1
        assert list(tmp_path.iterdir()) == []


def test_transient_faults_are_retried_until_the_file_arrives(tmp_path):
    with _fake(**{"w.pth": ["500", "cut", "retry_after"]}) as gh:
        fetch(gh.url + "/files/w.pth", tmp_path / "w.pth", _sha(b"w" * 5000), backoff=0.01)
        assert gh.calls("/files/w.pth") == 4 and (tmp_path / "w.pth").read_bytes() == b"w" * 5000


def test_stale_partials_of_a_killed_download_are_removed(tmp_path):
    data = b"weights" * 100
    src = tmp_path / "src" / "x.pth"
    src.parent.mkdir()
    src.write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".x.pth.abc123.part", out / ".x.pth.zz9.part"]
    for s in stale:
        s.write_bytes(b"partial")
    other = out / ".y.pth.abc.part"  # another file's partial is not ours to remove
    other.write_bytes(b"p")
    fetch(str(src), out / "x.pth", _sha(data))
    assert not any(s.exists() for s in stale) and other.exists()
    assert sorted(p.name for p in out.iterdir()) == [".y.pth.abc.part", "x.pth"]
