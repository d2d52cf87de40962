"""What the workflow watches to decide what reruns, beyond Snakemake's own checks.

Snakemake reruns a job when an input file is newer than its outputs, or a
parameter, the rule's code or its script changed. Two things a job depends on
escape those checks, and this module makes them visible:

* **The data folder.** As an input, a folder counts only by its own mtime,
  which does not change when a file inside it is rewritten. The manifest
  rules therefore take a fingerprint of the files they read as a parameter:
  a file added, removed, resized or re-dated changes it.
* **The code.** Snakemake tracks a rule's script by its mtime, and not the
  modules the script imports. Each rule therefore takes a digest of its
  script and of the source of every ``carmask`` module the script imports,
  directly or through other modules, as a parameter: editing ``rle.py``
  reruns the encode jobs and what follows them, and nothing that does not
  import it. Content, not file times: a ``touch``, a branch switched back
  and forth or a moved checkout rerun nothing, and an older script restored
  from git reruns its rule (the profiles turn Snakemake's own mtime-based
  ``code`` trigger off).

Standard library only: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from carmask.layout import is_ignored

PACKAGE = "carmask"
PACKAGE_DIR = Path(__file__).resolve().parent


def data_fingerprint(data_dir: str | os.PathLike[str], parts: Iterable[str]) -> str:
    """A digest of the name, size and mtime of every file under ``parts`` of ``data_dir``.

    ``parts`` are folders or files relative to ``data_dir``; a missing one is
    recorded as missing (the manifest job then reports it). Every file is
    stat'ed, none is read: 100,064 test photos cost about half a second on a local
    disk (more on a network filesystem), where hashing them would read 30 GB.
    As with ``make``, a file rewritten with the same size and mtime goes
    unnoticed.
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


#: Calls that import a module named at run time: the digest could not see which.
_DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})


def _imported_modules(source: Path) -> set[str]:
    """Names of the package's modules that ``source`` imports, at any depth of its code.

    Import forms this cannot follow raise instead of leaving a module out of
    the digest (an edit there would then rerun nothing): relative imports,
    ``import carmask`` (its modules are then reached as attributes) and
    imports by a name computed at run time (``importlib.import_module``,
    ``__import__``).
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name in _DYNAMIC_IMPORTS:
                raise ValueError(f"{source}:{node.lineno}: {name}(...) imports a module by a run-time name, which the "
                                 f"code digest cannot follow; import {PACKAGE} modules with a plain import statement")
        elif isinstance(node, ast.Import):
            if any(a.name == PACKAGE for a in node.names):
                raise ValueError(f"{source}:{node.lineno}: 'import {PACKAGE}' reaches modules as attributes, which the "
                                 f"code digest cannot follow; write 'from {PACKAGE} import <module>'")
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith(PACKAGE + "."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # Not followed: the package imports absolutely, and a silent gap would hide a dependency.
                raise ValueError(f"{source}:{node.lineno}: relative import; code_files follows only 'carmask.' imports")
            if node.module == PACKAGE:  # from carmask import rle, files
                found.update(a.name for a in node.names)
            elif node.module and node.module.startswith(PACKAGE + "."):
                found.add(node.module.split(".")[1])
    for name in found:
        if not (PACKAGE_DIR / f"{name}.py").is_file():
            raise ValueError(f"{source} imports {PACKAGE}.{name}, which is not a module file in {PACKAGE_DIR}")
    return found


def code_files(script: str | os.PathLike[str]) -> list[str]:
    """The package source files that running ``script`` imports, sorted.

    Follows imports from module to module (function-level imports too, which
    is where the package imports TensorFlow's users), always including the
    package's ``__init__.py``. Paths are those of the imported package: with
    the project's editable install, the checkout's ``src/carmask``.
    """
    todo = [Path(script)]
    seen: set[str] = set()
    while todo:
        for name in _imported_modules(todo.pop()) - seen:
            seen.add(name)
            todo.append(PACKAGE_DIR / f"{name}.py")
    return sorted(str(PACKAGE_DIR / f"{name}.py") for name in seen | {"__init__"})


def code_digest(script: str | os.PathLike[str]) -> str:
    """A digest of the script's content and of the names and contents of its :func:`code_files`.

    The script is in it too: Snakemake compares a script's mtime with the
    outputs', so a ``touch`` would rerun a job and an older version restored
    from git would not. The profiles therefore leave Snakemake's ``code``
    trigger off, and this content digest, a parameter of every rule, decides.
    """
    digest = hashlib.sha256()
    digest.update(f"[script {Path(script).name}]\n".encode())
    digest.update(Path(script).read_bytes())
    for path in code_files(script):
        digest.update(f"[{Path(path).name}]\n".encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def untracked_checkout(basedir: str | os.PathLike[str]) -> str | None:
    """A warning when the workflow's checkout has a ``src/carmask`` other than the imported one.

    The digests follow the imported package, which is what jobs run in the
    project's environment; a non-editable install beside an edited checkout
    would leave the edits untracked (and unused).
    """
    checkout = Path(basedir) / "src" / PACKAGE
    if checkout.is_dir() and checkout.resolve() != PACKAGE_DIR:
        return (
            f"carmask is imported from {PACKAGE_DIR}, not from this checkout's {checkout}: "
            "edits there are neither run nor tracked. Install it with `pip install -e .` (make does)."
        )
    return None
