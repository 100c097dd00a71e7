"""`transferkit download`: files fetched from a local HTTP server (never the internet), verified, resumed."""

import http.server
import shutil
import threading
from pathlib import Path

import pytest

from transferkit.datasets import _common, load_domain
from transferkit.datasets.download import DOWNLOADS, download

SHARED = Path(_common.data_dir())


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the mirror folder, honouring "Range: bytes=N-" (206), and records each request."""

    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append((self.path, self.headers.get("Range")))
        path = Path(self.directory) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404, "not found")
            return
        data = path.read_bytes()
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def mirror(tmp_path):
    """A local server whose folder holds the shared copies of amazon400's and mushroom's files."""
    files = [f for name in ("amazon400", "mushroom") for f in DOWNLOADS[name]]
    if not all((SHARED / f.path).exists() for f in files):
        pytest.skip("the shared benchmark data is not in TRANSFERKIT_DATA")
    served = tmp_path / "served"
    for f in files:
        (served / f.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / f.path, served / f.path)
    _Handler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()


def test_a_download_is_verified_and_loads(mirror, tmp_path):
    url, _ = mirror
    paths = download("amazon400", tmp_path / "data", mirror=url, verbose=False)
    assert [p.name for p in paths] == ["books_400.mat", "dvd_400.mat", "elec_400.mat", "kitchen_400.mat"]
    assert load_domain("amazon400:books", data_dir=tmp_path / "data").X.shape == (2000, 400)
    _Handler.requests.clear()
    download("amazon400", tmp_path / "data", mirror=url, verbose=False)  # already there and verified
    assert _Handler.requests == []


def test_an_interrupted_download_resumes_with_a_range_request(mirror, tmp_path):
    url, served = mirror
    remote = DOWNLOADS["mushroom"][0]
    part = tmp_path / "data" / (remote.path + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes((served / remote.path).read_bytes()[:1000])
    download("mushroom", tmp_path / "data", mirror=url, verbose=False)
    assert _Handler.requests == [(f"/{remote.path}", "bytes=1000-")]
    assert (tmp_path / "data" / remote.path).read_bytes() == (served / remote.path).read_bytes()
    assert not part.exists()


def test_a_file_that_does_not_match_its_checksum_is_refused_and_deleted(mirror, tmp_path):
    url, served = mirror
    remote = DOWNLOADS["mushroom"][0]
    (served / remote.path).write_text("not the mushroom data\n")
    with pytest.raises(ValueError, match=f"SHA-256 .*, expected {remote.sha256}"):
        download("mushroom", tmp_path / "data", mirror=url, verbose=False)
    assert not (tmp_path / "data" / remote.path).exists()
    assert not (tmp_path / "data" / (remote.path + ".part")).exists()


def test_errors_name_the_data_set_or_the_source(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'amazn'. Did you mean 'amazon'"):
        download("amazn", tmp_path)
    with pytest.raises(OSError, match="cannot be reached"):
        download("school", tmp_path, mirror="http://127.0.0.1:9", verbose=False)


def test_missing_data_says_which_download_fetches_it(tmp_path):
    for key, name in (("amazon:books", "amazon"), ("amazon400:dvd", "amazon400"), ("mushroom:enlarging", "mushroom")):
        with pytest.raises(FileNotFoundError, match=f"run `transferkit download {name}`"):
            load_domain(key, data_dir=tmp_path)
