"""Command line: ``carmask cutout`` cuts cars out of a folder of photos, ``carmask export`` writes a model for
serving, ``carmask score`` scores a submission, ``carmask submit`` uploads it to Kaggle."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time


def _add_cutout(sub) -> None:
    from carmask.photos.fitting import ASPECTS, DEFAULT_ASPECT
    from carmask.network.spec import TTA_MODES

    cut = sub.add_parser("cutout", help="masks, cutouts and composites of every photo in a folder")
    cut.add_argument("photos", help="folder of photos (JPEG, PNG, WebP, ...; sub-folders too)")
    cut.add_argument("out", help="output folder: masks/, cutouts/, composites/ mirror the photo folder; photos.csv")
    cut.add_argument("--model", required=True,
                     help="a trained model.keras (its card.json beside it), its folder, or a run's results/ or folder")
    cut.add_argument("--background", default="white", help="composite background: a colour (name or #rrggbb) or an image")
    cut.add_argument("--soft-edge", type=int, default=0, metavar="PX", help="feather the cutout's edge over about 2*PX+1 pixels")
    cut.add_argument("--trim", type=float, default=None, metavar="MARGIN",
                     help="crop cutout and composite to the car plus MARGIN of its larger side (e.g. 0.05)")
    cut.add_argument("--aspect", choices=ASPECTS, default=DEFAULT_ASPECT, help="how photos that are not 3:2 fit the model")
    cut.add_argument("--tta", choices=tuple(TTA_MODES), default=None, help="test-time views (default: the run's)")
    cut.add_argument("--batch-size", type=int, default=None, help="photos per batch (default: the run's)")
    cut.add_argument("--threads", type=int, default=2, help="CPU threads")


def _add_scoring(sub) -> None:
    score = sub.add_parser("score", help="mean Dice of a submission CSV against ground truth")
    score.add_argument("submission", help="submission CSV (img,rle_mask), plain or .gz")
    score.add_argument("truth", help="ground truth: a train_masks.csv-style RLE CSV, or a folder of mask GIFs")
    score.add_argument("--size", default="1280x1918", help="HxW of the images when truth is an RLE CSV (default Kaggle's 1280x1918)")
    score.add_argument("--per-image", action="store_true", help="include every image's Dice in the output")
    send = sub.add_parser("submit", help="validate results/submission.csv.gz and submit it with the kaggle CLI")
    send.add_argument("--configfile", nargs="+", default=["config.yaml"],
                      help="the config files of the run, layered like snakemake's --configfile, relative to "
                           "--directory (default config.yaml)")
    send.add_argument("--directory", default=".", help="the workflow's directory (holds results/)")
    send.add_argument("--file", default=None, help="submission file relative to it (default results/submission.csv.gz)")


def cutout(args) -> int:
    """Run a folder through the model; 1 when some files failed, 0 when every photo was cut out."""
    from carmask.logs import setup
    from carmask.photos.batch import SUMMARY, Options, cut_out_folder
    from carmask.photos.card import load_card

    from carmask.network import runtime

    setup()
    runtime.configure(args.threads)  # before a bare model's loading starts TensorFlow
    card = load_card(args.model, batch_size=args.batch_size or 8)
    changes = {k: v for k, v in (("tta", args.tta), ("batch_size", args.batch_size)) if v is not None}
    if changes:
        card = dataclasses.replace(card, prediction=dataclasses.replace(card.prediction, **changes))
    options = Options(background=args.background, soft_edge=args.soft_edge, trim=args.trim, aspect=args.aspect)
    start = time.perf_counter()
    table = cut_out_folder(card, args.photos, args.out, options, threads=args.threads)
    seconds = time.perf_counter() - start
    ok = table["status"] == "ok"
    print(f"{len(table)} files: {ok.sum()} cut out, {(~ok).sum()} failed, {table['flagged'].sum()} flagged to check by eye; "
          f"{seconds:.1f} s; {args.out}/{SUMMARY}")
    for row in table[~ok].itertuples():
        print(f"  failed: {row.photo}: {row.reason}", file=sys.stderr)
    return 0 if ok.all() else 1


def export(args) -> int:
    """Write the model for serving; print what was written."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the TFLite converter's start-up lines
    from carmask.network.export import export_model

    facts = export_model(args.model, args.out, tflite=not args.no_tflite)
    json.dump(facts, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


def score(args) -> int:
    from carmask.stages.evaluate import score_submission

    height, width = (int(v) for v in args.size.lower().split("x"))
    result = score_submission(args.submission, args.truth, size=(height, width))
    if not args.per_image:
        result.pop("per_image", None)
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


def submit(args) -> int:
    from carmask.stages.kaggle_upload import submit as upload

    upload(args.configfile, args.directory, args.file)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carmask", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_cutout(sub)
    exp = sub.add_parser("export", help="a trained model with BatchNorm folded, as a SavedModel and a TFLite file")
    exp.add_argument("model", help="a trained model.keras")
    exp.add_argument("out", help="output folder (saved_model/, model.tflite, export.json)")
    exp.add_argument("--no-tflite", action="store_true", help="write the SavedModel only")
    _add_scoring(sub)
    args = parser.parse_args(argv)

    from carmask.stages.kaggle_upload import SubmitError
    from carmask.stages.submission import SubmissionError

    try:
        return {"cutout": cutout, "export": export, "score": score, "submit": submit}[args.command](args)
    except (SubmissionError, SubmitError, FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        print(f"carmask {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
