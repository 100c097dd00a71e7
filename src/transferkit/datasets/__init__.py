"""Benchmark domains and synthetic shift problems for transfer learning.

Every real domain has a key ``"DATASET:DOMAIN"`` (see :func:`list_domains`) and loads with
:func:`load_domain` into a :class:`~transferkit.data.Domain`; :func:`load_task` pairs two of them
into an unsupervised domain adaptation :class:`~transferkit.data.Task`.

Where the files are
-------------------
The data directory is the ``data_dir`` argument, else ``$TRANSFERKIT_DATA``, else
``~/.cache/transferkit/data``; it is only read, never written. Files derived from it (the
generated MNIST-M images) go to ``$TRANSFERKIT_CACHE``, else ``~/.cache/transferkit/cache``.
The ``demo:`` domains ship inside the package and always load.

========================  ==========================================================
dataset                   domains
========================  ==========================================================
``amazon``                books, dvd, electronics, kitchen (5000-d counts, DANN copy)
``amazon400``             books, dvd, electronics, kitchen (400-d, no split)
``digits``                mnist, usps, mnistm
``digits16``              mnist, usps (16x16 pair of Long et al. 2013)
``demo``                  mnist, usps (embedded copy of ``digits16``)
``fashion``               mnist (Fashion-MNIST)
``landmine``              1..29, foliated, desert
``school``                1..139 (regression)
``newsgroups``            comp-vs-sci-1, comp-vs-sci-2, rec-vs-talk-1, rec-vs-talk-2
``mushroom``              enlarging, tapering
``zsl``                   apy, awa1, awa2, cub, sun (attributes only)
========================  ==========================================================

Synthetic problems with one known kind of shift each: :func:`make_covariate_shift`,
:func:`make_label_shift`, :func:`make_concept_shift`, :func:`make_blobs_shift`.
"""

from ._common import DataNotFoundError, DomainInfo, cache_dir, data_dir
from ._registry import (
    domain_info,
    harmonise_images,
    list_datasets,
    list_domains,
    load_domain,
    load_task,
    load_train_test,
    parse_key,
    subsample,
)
from .digits import build_mnistm
from .files import is_file_key
from .landmine import load_landmine
from .school import load_school
from .synthetic import make_blobs_shift, make_concept_shift, make_covariate_shift, make_label_shift
from .zsl import ZSLAttributes, ZSLBenchmark, load_zsl_attributes, load_zsl_benchmark

__all__ = [
    "DataNotFoundError",
    "DomainInfo",
    "ZSLAttributes",
    "build_mnistm",
    "cache_dir",
    "data_dir",
    "domain_info",
    "harmonise_images",
    "is_file_key",
    "list_datasets",
    "list_domains",
    "load_domain",
    "load_landmine",
    "load_school",
    "load_task",
    "load_train_test",
    "load_zsl_attributes",
    "load_zsl_benchmark",
    "ZSLBenchmark",
    "make_blobs_shift",
    "make_concept_shift",
    "make_covariate_shift",
    "make_label_shift",
    "parse_key",
    "subsample",
]
