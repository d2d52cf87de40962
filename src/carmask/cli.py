"""Command line: ``carmask score`` scores a submission, ``carmask submit`` uploads it to Kaggle."""

from __future__ import annotations

import argparse
import json
import sys

from carmask.stages.evaluate import score_submission
from carmask.stages.submission import SubmissionError
from carmask.stages.kaggle_upload import SubmitError, submit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carmask", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
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
    args = parser.parse_args(argv)

    if args.command == "submit":
        try:
            submit(args.configfile, args.directory, args.file)
        except SubmitError as err:
            print(f"carmask submit: {err}", file=sys.stderr)
            return 2
        return 0
    height, width = (int(v) for v in args.size.lower().split("x"))
    try:
        result = score_submission(args.submission, args.truth, size=(height, width))
    except (SubmissionError, FileNotFoundError, KeyError) as err:
        print(f"carmask score: {err}", file=sys.stderr)
        return 2
    if not args.per_image:
        result.pop("per_image", None)
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
