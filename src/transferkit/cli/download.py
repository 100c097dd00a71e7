"""``transferkit download NAME``: a benchmark's files from their public source, verified by SHA-256."""

from __future__ import annotations

from transferkit.cli._common import add_command


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "download",
        "fetch a benchmark's files into $TRANSFERKIT_DATA from their public source (resumable, SHA-256 verified)",
        "transferkit download amazon",
    )
    p.add_argument("name", help="the data set (`transferkit download list` lists them)")
    p.add_argument("--data-dir", help="where to put the files (default $TRANSFERKIT_DATA)")
    p.add_argument("--mirror", help="a base URL serving the files at their paths, instead of their sources")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from transferkit.datasets.download import DOWNLOADS, download, downloadable

    if args.name == "list":
        for name in downloadable():
            files = DOWNLOADS[name]
            print(f"{name:<11} {len(files)} file(s), {sum(f.size for f in files) / 1e6:.1f} MB")
        return 0
    paths = download(args.name, args.data_dir, args.mirror, verbose=not args.quiet)
    print(f"{args.name}: {len(paths)} file(s) in {paths[0].parent}")
    return 0
