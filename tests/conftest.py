"""Suite-wide guard: the tests leave the repository's own run outputs alone.

A newcomer runs `make run` and then `make test`. Whatever the first left in
results/, logs/ and .snakemake/ must neither change what the tests see nor
be changed by them; every test that runs snakemake works in a copy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from carmask.network.spec import Architecture

from .snakemake_runs import ROOT

OWN_OUTPUTS = ("results", "logs", ".snakemake")
ENVIRONMENTS = {"conda", "singularity", "apptainer"}


def _snapshot() -> dict[str, tuple[int, int]]:
    files = {}
    for name in OWN_OUTPUTS:
        folder = ROOT / name
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.parts[len(ROOT.parts)] == ".snakemake" and path.parts[len(ROOT.parts) + 1] in ENVIRONMENTS:
                    continue  # conda/apptainer caches: large, and no test's business
                if path.is_file() and not path.is_symlink():
                    st = path.stat()
                    files[str(path.relative_to(ROOT))] = (st.st_size, st.st_mtime_ns)
    return files


@pytest.fixture(scope="session", autouse=True)
def repository_outputs_untouched():
    before = _snapshot()
    yield
    after = _snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"tests changed the repository's own outputs: {changed[:10]}"


#: The tiny U-Net the photo and card tests predict with.
TINY = Architecture(name="unet", input_height=32, input_width=48, channels=3, base_filters=4)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A saved ``model.keras`` whose BatchNorms are not the identity (so folding and loading matter)."""
    from carmask.network.architectures import build_model

    from .network.test_folding import randomise_batchnorms

    import keras

    keras.utils.set_random_seed(0)  # the same weights every session: no test's outcome is left to chance
    model = build_model(TINY)
    randomise_batchnorms(model, seed=3)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path
