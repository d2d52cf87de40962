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

from carmask.planning.layout import is_ignored

PACKAGE = "carmask"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


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


def _module_file(dotted: str) -> Path | None:
    """The source file of package module ``dotted`` (a package's ``__init__.py``), or None if there is none."""
    path = PACKAGE_DIR.joinpath(*dotted.split(".")[1:])
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def _with_parents(dotted: str, source: Path, lineno: int) -> set[Path]:
    """The file of ``dotted`` and of every package above it (importing a module runs their ``__init__``)."""
    parts = dotted.split(".")
    found = set()
    for depth in range(1, len(parts) + 1):
        path = _module_file(".".join(parts[:depth]))
        if path is None:
            raise ValueError(f"{source}:{lineno}: imports {dotted}, which is not a module file under {PACKAGE_DIR}")
        found.add(path)
    return found


def _imported_files(source: Path) -> set[Path]:
    """The package's source files that ``source`` imports, at any depth of its code.

    ``from carmask.masks import rle`` imports ``masks/rle.py``; ``from
    carmask.masks.rle import encode`` the same file; both also run
    ``carmask/__init__.py`` and ``masks/__init__.py``. Import forms this cannot
    follow raise instead of leaving a module out of the digest (an edit there
    would then rerun nothing): relative imports, a package imported whole
    (``import carmask``, ``from carmask import masks``: its modules are then
    reached as attributes) and imports by a name computed at run time
    (``importlib.import_module``, ``__import__``).
    """
    found: set[Path] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name in _DYNAMIC_IMPORTS:
                raise ValueError(f"{source}:{node.lineno}: {name}(...) imports a module by a run-time name, which the "
                                 f"code digest cannot follow; import {PACKAGE} modules with a plain import statement")
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            # Not followed: the package imports absolutely, and a silent gap would hide a dependency.
            raise ValueError(f"{source}:{node.lineno}: relative import; code_files follows only '{PACKAGE}.' imports")
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names if a.name == PACKAGE or a.name.startswith(PACKAGE + ".")]
        elif isinstance(node, ast.ImportFrom) and node.module and (node.module + ".").startswith(PACKAGE + "."):
            # from a package, each name is a module of it or something its __init__ defines
            modules = [f"{node.module}.{a.name}" if _module_file(f"{node.module}.{a.name}") else node.module for a in node.names]
        else:
            continue
        for dotted in modules:
            path = _module_file(dotted)
            if path is not None and path.name == "__init__.py" and (isinstance(node, ast.Import) or dotted != node.module):
                raise ValueError(f"{source}:{node.lineno}: '{dotted}' is a package, whose modules are then reached as "
                                 f"attributes, which the code digest cannot follow; import its modules by name")
            found |= _with_parents(dotted, source, node.lineno)
    return found


def tree_fingerprint(root: str | os.PathLike[str]) -> str:
    """A digest of the relative path, size and mtime of every file under ``root``, sub-folders included.

    Hidden files and folders are left out, like the photo listing does; a
    missing ``root`` is recorded as missing (the listing job reports it).
    """
    digest = hashlib.sha256()
    root = Path(root)
    if not root.is_dir():
        return "missing"
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".")):
            st = os.stat(os.path.join(folder, name))
            rel = os.path.relpath(os.path.join(folder, name), root)
            digest.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def code_files(script: str | os.PathLike[str]) -> list[str]:
    """The package source files that running ``script`` imports, sorted.

    Follows imports from module to module (function-level imports too, which
    is where the package imports TensorFlow's users), always including the
    package's ``__init__.py``. Paths are those of the imported package: with
    the project's editable install, the checkout's ``src/carmask``.
    """
    todo = [Path(script)]
    seen: set[Path] = {PACKAGE_DIR / "__init__.py"}
    while todo:
        for path in _imported_files(todo.pop()) - seen:
            seen.add(path)
            todo.append(path)
    return sorted(str(path) for path in seen)


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
        digest.update(f"[{Path(path).relative_to(PACKAGE_DIR).as_posix()}]\n".encode())
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
