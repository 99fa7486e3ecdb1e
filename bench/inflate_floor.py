"""The floor of a hunt as a whole process: list the tree, read and inflate every `.json.gz`, nothing else.

    .venv/bin/python bench/inflate_floor.py TREE [--library libdeflate|isal] [--processes 2]

Run by `bench_hunt.py` beside the `eksir hunt` process, so both sides pay for an interpreter, for listing
the files and for starting their workers. It imports only the standard library and the inflate library, on
2 forked processes as eksir's workers are started, and prints one JSON line: files and inflated bytes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor


def _walk(root: str) -> Iterator[str]:
    for folder, _dirs, names in os.walk(root):
        for name in sorted(names):
            if name.endswith(".json.gz"):
                yield os.path.join(folder, name)


def _inflate(library: str, paths: list[str]) -> int:
    if library == "isal":
        from isal import igzip  # noqa: PLC0415 - only the library measured is imported

        decompress = igzip.decompress
    else:
        import deflate  # noqa: PLC0415

        decompress = deflate.gzip_decompress
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            total += len(decompress(handle.read()))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree")
    parser.add_argument("--library", choices=("libdeflate", "isal"), default="libdeflate")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    paths = list(_walk(args.tree))
    chunks = [paths[i : i + 32] for i in range(0, len(paths), 32)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(args.processes, mp_context=context) as pool:
        total = sum(pool.map(_inflate, [args.library] * len(chunks), chunks))
    print(json.dumps({"files": len(paths), "bytes": total}))


if __name__ == "__main__":
    main()
