"""A folder of photos through a trained model: masks, cutouts and composites, one row per photo.

Photos go through in batches: each is read upright in 8-bit RGB
(:mod:`carmask.photos.reading`), fitted to the model's 3:2 input
(:mod:`carmask.photos.fitting`), predicted with the run's test-time views,
and its full-size mask becomes the user's files (:mod:`carmask.photos.outputs`),
each written atomically. A file that is not a photo is a row with its reason
and the batch goes on. Every finished photo is appended to a journal in the
output folder, keyed by the photo's size and time and by the model and
settings, so an interrupted batch resumes where it stopped and a changed
model or setting redoes every photo.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image

from carmask import files
from carmask.logs import Progress
from carmask.planning.tracking import code_digest
from carmask.photos.card import UNCERTAIN, ModelCard
from carmask.photos.fitting import DEFAULT_ASPECT, Placement, canvas, model_input, photo_mask, place
from carmask.photos.outputs import alpha, car_box, check_background, composite, cutout
from carmask.photos.reading import PhotoError, find_photos, read_photo

if TYPE_CHECKING:
    from carmask.network.refiner import Refiner

log = logging.getLogger(__name__)

COLUMNS = ["photo", "status", "reason", "width", "height", "car_fraction", "uncertain_share",
           "flagged", "flag_reason", "seconds"]
#: The output folders, one file per photo in each, the photo's sub-folders mirrored.
KINDS = {"mask": ("masks", ".png"), "cutout": ("cutouts", ".png"), "composite": ("composites", ".jpg")}
JOURNAL = ".carmask/journal.jsonl"
#: Photos held at once: a 12-megapixel photo and its padded canvas are about
#: 80 MB, so a batch is at most this many photos whatever the run's batch size.
MAX_PHOTOS_IN_MEMORY = 8
SUMMARY = "photos.csv"


@dataclass(frozen=True)
class Options:
    """What the user gets back: the composite's background, a soft edge, trimming, how photos fit the model."""

    background: str = "white"
    soft_edge: int = 0
    trim: float | None = None
    aspect: str = DEFAULT_ASPECT
    jpeg_quality: int = 92


def output_stems(photos: Sequence[str]) -> dict[str, str]:
    """Each photo's output name without suffix: its path without its suffix, or with it (``a_jpg``) when two would clash."""
    plain = {p: str(PurePosixPath(p).with_suffix("")) for p in photos}
    counts = Counter(plain.values())
    return {p: stem if counts[stem] == 1 else stem + "_" + PurePosixPath(p).suffix.lstrip(".").lower()
            for p, stem in plain.items()}


def output_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    """The mask, cutout and composite files of one photo."""
    return {kind: out_dir / folder / f"{stem}{suffix}" for kind, (folder, suffix) in KINDS.items()}


def settings_key(card: ModelCard, options: Options) -> str:
    """A digest of the model's bytes, its card, the options and this code: what every photo's outputs depend on."""
    digest = hashlib.sha256(code_digest(__file__).encode())
    for path in [card.model_path] + ([card.refiner_path] if card.refine == "learned" else []):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    digest.update(json.dumps([card.to_json(), dataclasses.asdict(options)], sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _photo_key(path: Path, settings: str) -> str:
    st = path.stat()
    return f"{settings}:{st.st_size}:{st.st_mtime_ns}"


def read_journal(path: Path) -> dict[str, dict]:
    """The rows a journal holds, by photo (a torn last line from an interrupted run is ignored)."""
    rows: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[row["photo"]] = row
    return rows


def load_models(card: ModelCard) -> list:
    """The card's model (and its second-scale twin for the ``scale`` views), folded, in the card's precision."""
    from carmask.network.folding import fold_batchnorm
    from carmask.network.inference import load_for_inference, load_keras_model

    if card.architecture is not None:
        return load_for_inference(str(card.model_path), card.architecture, card.prediction)
    if card.prediction.views[1]:
        raise ValueError(f"{card.model_path} has no card.json beside it: the scale views need its architecture; use tta none or flip")
    model = load_keras_model(card.model_path)
    return [fold_batchnorm(model) if card.prediction.fold else model]


@dataclass
class _Pending:
    """A photo read and fitted, waiting for its batch's prediction."""

    photo: str
    key: str
    pixels: np.ndarray
    where: Placement
    full: np.ndarray
    inputs: list[np.ndarray]
    seconds: float


def _prepare(photo: str, photos_dir: Path, settings: str, sizes: list[tuple[int, int]], card: ModelCard, options: Options) -> _Pending | dict:
    """A photo read and fitted to the model's input sizes, or its failed row."""
    start = time.perf_counter()
    path = photos_dir / photo
    try:
        key = _photo_key(path, settings)
        pixels = read_photo(path)
    except (PhotoError, OSError) as err:
        return {"photo": photo, "status": "failed", "reason": str(err), "seconds": round(time.perf_counter() - start, 3)}
    where = place(pixels.shape[:2], card.size, options.aspect)
    full = canvas(pixels, where)
    inputs = [model_input(full, size, card.channels) for size in sizes]
    return _Pending(photo, key, pixels, where, full, inputs, time.perf_counter() - start)


def _statistics(probs: np.ndarray, mask: np.ndarray, where: Placement) -> tuple[float, float]:
    """The photo's car fraction (full size) and the share of its model-size pixels that are uncertain."""
    h, w = probs.shape
    top = round(where.top * h / where.canvas[0])
    left = round(where.left * w / where.canvas[1])
    bottom = max(top + 1, round((where.top + where.photo[0]) * h / where.canvas[0]))
    right = max(left + 1, round((where.left + where.photo[1]) * w / where.canvas[1]))
    region = probs[top:bottom, left:right]
    uncertain = float(np.mean((region > UNCERTAIN[0]) & (region < UNCERTAIN[1])))
    return float(mask.mean()), uncertain


def _finish(item: _Pending, probs: np.ndarray, card: ModelCard, options: Options, paths: dict[str, Path],
            refiner: Refiner | None) -> dict:
    """Write one photo's files from its model-size probabilities; return its row."""
    start = time.perf_counter()
    mask = photo_mask(probs, item.where, card.threshold, item.full if card.refine != "none" else None,
                      refiner.mask if refiner else None)
    car_fraction, uncertain = _statistics(probs, mask, item.where)
    flag = card.validation.unlike(car_fraction, uncertain) if card.validation else ""
    car = cutout(item.pixels, alpha(mask, options.soft_edge))
    box = car_box(mask, options.trim) if options.trim is not None else None
    images = {"mask": Image.fromarray(mask.astype(np.uint8) * 255, mode="L"), "cutout": car,
              "composite": composite(car, options.background)}
    for kind, image in images.items():
        if box is not None and kind != "mask":
            image = image.crop(box)
        with files.atomic_path(paths[kind]) as tmp:
            if kind == "composite":
                image.save(tmp, quality=options.jpeg_quality)
            else:
                image.save(tmp, compress_level=1)
    height, width = mask.shape
    return {"photo": item.photo, "status": "ok", "reason": "", "width": width, "height": height,
            "car_fraction": round(car_fraction, 6), "uncertain_share": round(uncertain, 6),
            "flagged": bool(flag), "flag_reason": flag, "seconds": round(item.seconds + time.perf_counter() - start, 3),
            "key": item.key}


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _predict(infer, items: Sequence[_Pending], card: ModelCard) -> np.ndarray:
    """``uint8`` model-size probabilities of a batch of prepared photos (all views averaged)."""
    from carmask.network.inference import predict_views

    batch = [np.stack([item.inputs[i] for item in items]) for i in range(len(items[0].inputs))]
    return predict_views(infer, batch, card.output_activation)


def _is_done(row: dict | None, key: str, paths: dict[str, Path]) -> bool:
    return bool(row) and row.get("status") == "ok" and row.get("key") == key and all(p.is_file() for p in paths.values())


def cut_out_photos(
    card: ModelCard, photos_dir: str | Path, out_dir: str | Path, photos: Sequence[str], options: Options,
    journal: str | Path, threads: int = 2,
) -> pd.DataFrame:
    """Masks, cutouts and composites of ``photos`` (paths relative to ``photos_dir``) in ``out_dir``; one row per photo.

    Photos finished with the same model, settings and file (per ``journal``)
    are not redone. Returns the rows in ``photos`` order.
    """
    from carmask.network import runtime
    from carmask.network.inference import view_averager
    from carmask.network.refiner import Refiner
    from carmask.network.spec import TTA_SCALE

    photos_dir, out_dir, journal = Path(photos_dir), Path(out_dir), Path(journal)
    check_background(options.background)
    if card.refine == "learned" and not card.refiner_path.is_file():
        raise FileNotFoundError(f"{card.refiner_path} does not exist: {card.model_path}'s card refines with the "
                                "learned network, which the workflow saves beside the model (rule train_refiner)")
    settings = settings_key(card, options)
    stems = output_stems(photos)
    previous = read_journal(journal)
    rows = {}
    for photo in photos:
        path = photos_dir / photo
        key = _photo_key(path, settings) if path.is_file() else None
        if _is_done(previous.get(photo), key, output_paths(out_dir, stems[photo])):
            rows[photo] = previous[photo]
    todo = [p for p in photos if p not in rows]
    log.info("%d photos: %d done before, %d to do; model %s, tta %s", len(photos), len(rows), len(todo),
             card.model_path, card.prediction.tta)
    if todo:
        runtime.configure(threads)
        infer = view_averager(load_models(card), card.size, card.prediction)
        refiner = Refiner.load(card.refiner_path) if card.refine == "learned" else None
        sizes = [card.size] + ([(round(card.size[0] * TTA_SCALE), round(card.size[1] * TTA_SCALE))] if card.prediction.views[1] else [])
        progress = Progress(len(todo), "photos", log, bar=True)
        journal.parent.mkdir(parents=True, exist_ok=True)
        with open(journal, "a", buffering=1) as record, ThreadPoolExecutor(max(1, threads)) as pool:
            for chunk in _batches(todo, min(card.prediction.batch_size, MAX_PHOTOS_IN_MEMORY)):
                for row in _run_batch(chunk, infer, pool, photos_dir, out_dir, stems, settings, sizes, card, options, refiner):
                    record.write(json.dumps(row) + "\n")
                    rows[row["photo"]] = row
                progress.update(len(chunk))
    table = pd.DataFrame([rows[p] for p in photos], columns=COLUMNS)
    table = table.fillna({"reason": "", "flag_reason": "", "flagged": False})
    return table.astype({"flagged": bool, "width": "Int64", "height": "Int64"})


def _run_batch(chunk, infer, pool, photos_dir, out_dir, stems, settings, sizes, card, options, refiner) -> Iterator[dict]:
    """The rows of one batch in order, each as soon as it is final: photos are read and written on the pool's threads.

    Decoding, resizing, upsampling and PNG/JPEG encoding release the GIL, so
    a second thread keeps the second core busy while the model waits.
    """
    prepared = list(pool.map(lambda photo: _prepare(photo, photos_dir, settings, sizes, card, options), chunk))
    ready = [item for item in prepared if isinstance(item, _Pending)]
    yield from (item for item in prepared if isinstance(item, dict))
    if not ready:
        return
    start = time.perf_counter()
    probs = _predict(infer, ready, card)
    share = (time.perf_counter() - start) / len(ready)

    def finish(pair) -> dict:
        item, p = pair
        item.seconds += share
        return _finish(item, p, card, options, output_paths(out_dir, stems[item.photo]), refiner)

    yield from pool.map(finish, zip(ready, probs))


def write_summary(table: pd.DataFrame, path: str | Path) -> None:
    """The per-photo CSV, written atomically."""
    with files.atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")


def list_folder(photos_dir: str | Path, out_dir: str | Path) -> list[str]:
    """The files of the photo folder (:func:`find_photos`); an error when there are none or ``out_dir`` lies inside it."""
    photos_dir, out_dir = Path(photos_dir).resolve(), Path(out_dir).resolve()
    if out_dir == photos_dir or photos_dir in out_dir.parents:
        raise ValueError(f"the output folder {out_dir} lies inside the photo folder {photos_dir}; choose one outside it")
    photos = find_photos(photos_dir)
    if not photos:
        raise ValueError(f"photo folder {photos_dir} holds no files")
    return photos


def cut_out_folder(card: ModelCard, photos_dir: str | Path, out_dir: str | Path, options: Options, threads: int = 2) -> pd.DataFrame:
    """Every file under ``photos_dir`` through the model into ``out_dir`` (with ``photos.csv``); the rows."""
    photos = list_folder(photos_dir, out_dir)
    photos_dir, out_dir = Path(photos_dir), Path(out_dir)
    table = cut_out_photos(card, photos_dir, out_dir, photos, options, out_dir / JOURNAL, threads)
    write_summary(table, out_dir / SUMMARY)
    return table
