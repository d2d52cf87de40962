"""What the workflow watches to decide what reruns, beyond Snakemake's own checks.

Snakemake reruns a job when an input file is newer than its outputs, or a
parameter, the rule's code or its script changed. Two things a job depends on
escape those checks, and this module makes them visible:

* **The data folder.** As an input, a folder counts only by its own mtime,
  which does not change when a file inside it is rewritten. The manifest
  rules therefore take a fingerprint of the files they read as a parameter:
  a file added, removed, resized or re-dated changes it.
* **The package.** Snakemake tracks a rule's script, not the modules the
  script imports. Each rule therefore lists the source files of every
  ``carmask`` module its script imports, directly or through other modules,
  as inputs: editing ``rle.py`` reruns the encode jobs and what follows
  them, and nothing that does not import it.

Standard library only: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "carmask"
PACKAGE_DIR = Path(__file__).resolve().parent


#: Files that operating systems and file managers drop into folders (besides dot-files).
IGNORED_NAMES = {"thumbs.db", "desktop.ini"}


def is_ignored(name: str) -> bool:
    """Files neither the manifest nor the fingerprint looks at: dot-files and file-manager litter."""
    return name.startswith(".") or name.lower() in IGNORED_NAMES


def data_fingerprint(data_dir: str | os.PathLike[str], parts: Iterable[str]) -> str:
    """A digest of the name, size and mtime of every file under ``parts`` of ``data_dir``.

    ``parts`` are folders or files relative to ``data_dir``; a missing one is
    recorded as missing (the manifest job then reports it). Only the
    directory entries are read, so 100,064 test photos cost a fraction of a
    second, not a read of every byte; as with ``make``, a file rewritten with
    the same size and an older mtime goes unnoticed.
    """
    digest = hashlib.sha256()
    root = Path(data_dir)
    for part in parts:
        path = root / part
        digest.update(f"[{part}]\n".encode())
        if path.is_dir():
            with os.scandir(path) as entries:
                files = sorted((e.name, e.stat()) for e in entries if e.is_file() and not is_ignored(e.name))
            for name, st in files:
                digest.update(f"{name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        elif path.is_file():
            st = path.stat()
            digest.update(f"{st.st_size}\t{st.st_mtime_ns}\n".encode())
        else:
            digest.update(b"missing\n")
    return digest.hexdigest()[:16]


def _imported_modules(source: Path) -> set[str]:
    """Names of the package's modules that ``source`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith(PACKAGE + "."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == PACKAGE:  # from carmask import rle, io
                found.update(a.name for a in node.names)
            elif node.module.startswith(PACKAGE + "."):
                found.add(node.module.split(".")[1])
    return {name for name in found if (PACKAGE_DIR / f"{name}.py").is_file()}


def code_files(script: str | os.PathLike[str]) -> list[str]:
    """The package source files that running ``script`` imports, sorted.

    Follows imports from module to module (function-level imports too, which
    is where the package imports TensorFlow's users), always including the
    package's ``__init__.py``. Paths are those of the installed package, so an
    editable install tracks the files being edited.
    """
    todo = [Path(script)]
    seen: set[str] = set()
    while todo:
        for name in _imported_modules(todo.pop()) - seen:
            seen.add(name)
            todo.append(PACKAGE_DIR / f"{name}.py")
    return sorted(str(PACKAGE_DIR / f"{name}.py") for name in seen | {"__init__"})
