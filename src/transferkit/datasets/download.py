"""``transferkit download NAME``: a benchmark's files from their public source, verified, resumable.

Each file comes from the public copy its folder's ``SOURCE.md`` names (a GitHub repository at a
fixed commit, or the UCI repository), is written under the data directory as ``NAME.part`` while it
arrives (a later call resumes it with an HTTP range request), and is kept only when its SHA-256
matches the copy the benchmarks in ``benchmarks/RESULTS.md`` were measured on.

Only data sets whose loaders read the public files byte for byte are here. The digit data sets are
assembled or converted from several sources (their ``SOURCE.md`` says how), so they are not.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ._common import DATA_ENV, _resolve

__all__ = ["DOWNLOADS", "RemoteFile", "download", "downloadable"]

_GITHUB = "https://raw.githubusercontent.com"
_DANN = f"{_GITHUB}/GRAAL-Research/domain_adversarial_neural_network"
_SKADA = f"{_GITHUB}/scikit-adaptation/skada-bench/af0537050789583bd4e2697f9a431811b5a46873/data/amazon_review"
_MALSAR = f"{_GITHUB}/jiayuzhou/MALSAR/ca3d55b878cc4113f0d9603e8ac46538aeb1ecd9/data"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set: where it goes under the data directory, where it comes from, its SHA-256."""

    path: str
    url: str
    sha256: str
    size: int


def _dann(name: str, commit: str, sha: str, size: int) -> RemoteFile:
    return RemoteFile(f"amazon_reviews_dann/{name}", f"{_DANN}/{commit}/data/{name}", sha, size)


_C1, _C2 = "9c89dea39409345c5d158373aea31b1518bc8632", "35d15ded645989bab9f6ea431a8fcd07c0909f01"

#: Every downloadable data set by the name its keys use (``amazon`` for ``amazon:books``, ...).
DOWNLOADS: dict[str, list[RemoteFile]] = {
    "amazon": [
        _dann("books_train.svmlight", _C1, "317f9a2ec34b81de770b63a84d8c5cc2dc16bd0be6e079d2ff5b5bad5213ea19", 1134070),
        _dann("books_test.svmlight", _C1, "fe4605c7dcf0e0a9410fd2a32f247caaf9abb352cc6e4c3e0f400853163ad9c4", 2426071),
        _dann("dvd_train.svmlight", _C2, "95f602aa08bf6b55758f7b0b18df3882fe30acb11987ee60b6b4bb3c44cba733", 1133356),
        _dann("dvd_test.svmlight", _C1, "4fe1b1a15010f78d8d0c49fe362d35fd4677463a45f1ac02a9f410ae1e638060", 2039832),
        _dann(
            "electronics_train.svmlight",
            _C1,
            "7d0061f03ff3827e4f8036b051b5e5828fddc0cd115aa5b212cd28d624dc14e4",
            872265,
        ),
        _dann(
            "electronics_test.svmlight",
            _C2,
            "641783bc941839c3a111d3488a1b7e3bd820a61ec14a129e7429b47703aa961d",
            2461224,
        ),
        _dann(
            "kitchen_train.svmlight", _C2, "a70b5ebfe1413e0e16280360905f5c3b64389c435cd20c0165dc9d7f293b31b5", 771076
        ),
        _dann(
            "kitchen_test.svmlight", _C1, "e1502b97a824eb12314be4447394fa736fecb781c0724e6529cd6733ac7ff6d8", 2280620
        ),
    ],
    "amazon400": [
        RemoteFile(f"amazon_reviews_400/{name}", f"{_SKADA}/{name}", sha, size)
        for name, sha, size in (
            ("books_400.mat", "7a53b54f0c0e81e7ee4774d762a927399cede9a802a2409732ba00cc1c23a17a", 356724),
            ("dvd_400.mat", "13a71d399f9c7ae57064952979c830455057ffd0a8da73f2c9075338d64d98ce", 360255),
            ("elec_400.mat", "f1dd6e01c1eed956d3abe6493a6bb5efc95e6585b8b9b2d856c0c07e12893a35", 316867),
            ("kitchen_400.mat", "b1f4e5ddfbd7b37ad2638fccbf83bd8558abf63b3e8d69a9d5bca77b1a49fed5", 287938),
        )
    ],
    "newsgroups": [
        RemoteFile(f"malsar_mtl/Newsgroup/{name}", f"{_MALSAR}/Newsgroup/{name}", sha, size)
        for name, sha, size in (
            ("comp.vs.sci/task1.mat", "136e73185215cdc5fe7af4c2e0d86dae9da864e119fef95253ef6614d139d7ab", 233347),
            ("comp.vs.sci/task2.mat", "efafdffe36f05668f9cd638cbfad45a96b6e69e385a65fb7a24dda6082adec52", 209328),
            ("rec.vs.talk/Task1.mat", "2ccc2c933adb5e9a88524e0d0a90022ee925e3395fead485c2d7d31a14149997", 251693),
            ("rec.vs.talk/Task2.mat", "162fe06ddbad645577a2c538645f72115416811f8ee6dffc2fe2944a1c632e08", 184593),
        )
    ],
    "school": [
        RemoteFile(
            "malsar_mtl/school.mat",
            f"{_MALSAR}/school.mat",
            "57fb3238fdd03a9aa17276e2ce18d9bbb5d128c3261e794fe6233b58b6909068",
            44759,
        )
    ],
    "landmine": [
        RemoteFile(
            "landmine_mtl/LandmineData.mat",
            f"{_GITHUB}/daizhongxiang/Federated_Bayesian_Optimization/9f46a1dfbbcfd5823e026ad9418a4cb881676ae9/"
            "LandmineData.mat",
            "2163ab20a80e33a8b65593c48cf283c540599dcb291105e63fa4af2ce24c2bea",
            1085456,
        )
    ],
    "mushroom": [
        RemoteFile(
            "uci_mushroom/agaricus-lepiota.data",
            "https://archive.ics.uci.edu/ml/machine-learning-databases/mushroom/agaricus-lepiota.data",
            "e65d082030501a3ebcbcd7c9f7c71aa9d28fdfff463bf4cf4716a3fe13ac360e",
            373704,
        )
    ],
}


def downloadable() -> list[str]:
    """The names :func:`download` accepts."""
    return sorted(DOWNLOADS)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url: str, part: Path, size: int, progress) -> None:
    """Append to ``part`` what it lacks of ``url``'s bytes (an HTTP range request when some are there)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - fixed https URLs, or a mirror
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        with open(part, "ab" if have else "wb") as f:
            if progress is not None:
                progress.update(have)
            for block in iter(lambda: response.read(_CHUNK), b""):
                f.write(block)
                if progress is not None:
                    progress.update(len(block))


def download(
    name: str, data_dir: str | os.PathLike | None = None, mirror: str | None = None, verbose: bool = True
) -> list[Path]:
    """Fetch data set ``name`` into the data directory (``data_dir``, else ``$TRANSFERKIT_DATA``).

    Files already there with the right checksum are kept. ``mirror``: a base URL serving the files
    at their paths under the data directory (a local copy, or the tests' server) instead of their
    sources. Returns the files' paths. Raises ``ValueError`` for an unknown name or a file whose
    checksum does not match (it is deleted), ``OSError`` when a source cannot be reached.
    """
    if name not in DOWNLOADS:
        import difflib

        close = difflib.get_close_matches(str(name), DOWNLOADS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown data set {name!r}.{hint} Downloadable: {', '.join(downloadable())}.")
    root = _resolve(data_dir, DATA_ENV, "data")
    paths = []
    for remote in DOWNLOADS[name]:
        dest = root / remote.path
        paths.append(dest)
        if dest.exists() and _sha256(dest) == remote.sha256:
            continue
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(
                f"cannot create {dest.parent} ({err.strerror}); set {DATA_ENV} to a writable folder."
            ) from None
        part = dest.with_name(dest.name + ".part")
        url = f"{mirror.rstrip('/')}/{remote.path}" if mirror else remote.url
        progress = None
        if verbose:
            from tqdm.auto import tqdm

            progress = tqdm(
                total=remote.size, desc=remote.path, unit="B", unit_scale=True, leave=False, file=sys.stderr
            )
        try:
            _fetch(url, part, remote.size, progress)
        except urllib.error.HTTPError as err:
            raise OSError(f"{url}: the server answered {err.code} {err.reason}.") from None
        except (urllib.error.URLError, TimeoutError) as err:
            reason = getattr(err, "reason", err)
            raise OSError(f"{url} cannot be reached ({reason}); run the command again to resume.") from None
        finally:
            if progress is not None:
                progress.close()
        got = _sha256(part)
        if got != remote.sha256:
            part.unlink()
            raise ValueError(
                f"{url}: SHA-256 {got}, expected {remote.sha256} (the copy the benchmarks were measured on); "
                "the file was deleted. The source may have changed."
            )
        os.replace(part, dest)
        if verbose:
            print(f"transferkit: {dest} ({remote.size:,} bytes, SHA-256 verified)", file=sys.stderr)
    return paths
