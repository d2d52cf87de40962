"""The predictions file: ``uint8`` probability maps at model size, one parquet row per image.

Written by the predict stage and read by encode; evaluate reads only the
timing file a predict job writes beside it.
Kept apart from
:mod:`carmask.network.inference` so that reading the file needs neither TensorFlow nor
the model code (and editing them does not rerun the encode jobs).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: Columns of a predictions file: image name, map height and width, raw bytes.
PREDICTIONS_SCHEMA = pa.schema(
    [
        ("img", pa.string()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("probs", pa.binary()),
    ]
)
#: Images per parquet row group of a predictions file (what a reader holds at once).
PREDICTIONS_ROW_GROUP = 256


def record_batch(names: Sequence[str], probs: np.ndarray) -> pa.RecordBatch:
    """One batch of rows: ``probs`` is ``uint8`` (b, h, w), ``names`` its b image names."""
    b, h, w = probs.shape
    return pa.record_batch(
        [
            pa.array(list(names), pa.string()),
            pa.array(np.full(b, h, np.int32)),
            pa.array(np.full(b, w, np.int32)),
            pa.array([p.tobytes() for p in probs], pa.binary()),
        ],
        schema=PREDICTIONS_SCHEMA,
    )


def timing_path(predictions_path: str | Path) -> Path:
    """The JSON beside a predictions file with what its job measured (images/s).

    Timings vary from run to run, so they live apart from the predictions,
    which are byte-identical between runs with the same settings.
    """
    path = Path(predictions_path)
    return path.with_name(path.name.removesuffix(".parquet") + ".timing.json")


def read_rate(timing: str | Path) -> float | None:
    """The images/s a predict job measured (decode + model + write), from its timing file."""
    value = json.loads(Path(timing).read_text()).get("images_per_s")
    return float(value) if value else None


def read_precision(timings: Sequence[str | Path], what: str) -> str:
    """The one dtype policy the predict jobs of ``timings`` computed in.

    Probabilities of one model in two precisions differ in their outline
    pixels: a validation Dice measured in one would not describe test masks
    made in the other, so mixed or unknown precisions are an error naming
    the files (``what`` says which predictions they are).
    """
    found = {str(p): json.loads(Path(p).read_text()).get("precision") for p in timings}
    kinds = set(found.values())
    if len(kinds) != 1 or None in kinds:
        listed = ", ".join(f"{p}: {v}" for p, v in found.items())
        raise ValueError(f"{what} were not all predicted in one known precision ({listed}); "
                         "rerun them with one inference.precision (snakemake -R predict)")
    return kinds.pop()


def check_same_precision(metrics: str | Path, test_timings: Sequence[str | Path], model: str) -> None:
    """Refuse test predictions made in another precision than the validation ones the model was scored on.

    ``metrics`` is the entry's ``results/metrics/{model}.json``, which records
    the precision of its validation predictions.
    """
    val_precision = json.loads(Path(metrics).read_text()).get("precision")
    test_precision = read_precision(test_timings, f"the test predictions of {model}")
    if test_precision != val_precision:
        raise ValueError(f"{model}: the test set was predicted in {test_precision}, its validation photos in "
                         f"{val_precision}; its validation Dice would not describe these masks. Rerun the "
                         "predictions in one precision (snakemake -R predict)")


def read_probabilities(path: str | Path, batch_rows: int = 64) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (img, uint8 probabilities (h, w)) from a predictions file, streaming."""
    with pq.ParquetFile(path) as f:
        for batch in f.iter_batches(batch_size=batch_rows):
            cols = batch.to_pydict()
            for img, h, w, raw in zip(cols["img"], cols["height"], cols["width"], cols["probs"]):
                yield img, np.frombuffer(raw, dtype=np.uint8).reshape(h, w)


def read_members(paths: Sequence[str | Path]) -> Iterator[tuple[str, list[np.ndarray]]]:
    """Yield (img, [probabilities of each file]) from predictions files of the same photos, streaming.

    The files of an ensemble's models for one shard list the same photos in
    the same order (the shard's rows); anything else is an error, not a
    silent misalignment.
    """
    readers = [read_probabilities(p) for p in paths]
    for rows in itertools.zip_longest(*readers):
        if any(row is None for row in rows):
            raise ValueError(f"predictions files {list(map(str, paths))} hold different numbers of photos")
        names = {img for img, _ in rows}
        if len(names) != 1:
            raise ValueError(f"predictions files {list(map(str, paths))} are not aligned: {sorted(names)} in one row")
        yield rows[0][0], [probs for _, probs in rows]
