"""Kaggle's Carvana folder layout: which files each side of the data is made of.

Standard library only: the workflow imports it when it is planned (to watch
the data folder), and a Snakemake environment need not have pandas or Pillow.

Layout: ``train/<car>_<NN>.jpg``, ``train_masks/<car>_<NN>_mask.gif``,
``test/<car>_<NN>.jpg`` and optionally ``sample_submission.csv`` (whose order
the submission follows).
"""

from __future__ import annotations

import re

#: A photo's name: a 12-hex-digit car id and a two-digit view.
IMAGE_RE = re.compile(r"^(?P<car>[0-9a-f]{12})_(?P<view>\d{2})\.jpg$")
#: What replaces ``.jpg`` in the name of a photo's mask.
MASK_SUFFIX = "_mask.gif"
#: The folders and files each manifest side reads. The workflow builds the
#: sides in separate jobs and watches each one's files, so a new test photo
#: reruns only what depends on the test side.
SIDES: dict[str, tuple[str, ...]] = {
    "train": ("train", "train_masks"),
    "test": ("test", "sample_submission.csv"),
}
#: Files that operating systems and file managers drop into folders (besides dot-files).
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})


def is_ignored(name: str) -> bool:
    """Files neither the manifest nor the workflow's fingerprint looks at: dot-files and file-manager litter."""
    return name.startswith(".") or name.lower() in IGNORED_NAMES
