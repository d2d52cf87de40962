"""Kaggle RLEs checked a whole Arrow column at a time.

:func:`carmask.masks.rle.validate` checks one RLE in Python; the merge of
Kaggle's 100,064 masks spent most of its time there. :func:`all_valid`
makes the same checks over a column of masks in a few Arrow and numpy
passes, for masks written as the encoder writes them. It only ever vouches:
when it says False, :func:`carmask.masks.rle.validate` row by row decides
(and says what is wrong).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# An RLE as the encoder writes it: empty, or pairs of ASCII decimals joined by single spaces.
ENCODER_RLE = r"^(?:[0-9]+ [0-9]+(?: [0-9]+ [0-9]+)*)?$"


def all_valid(codes: pa.Array, pixels: np.ndarray) -> bool:
    """True only if every mask is written as the encoder writes it and is a valid RLE inside its image.

    ``pixels`` holds each row's height * width. The checks are
    :func:`carmask.masks.rle.validate`'s, over the whole column at once:
    positive starts and lengths, runs strictly increasing and separate, the
    last one inside the image. False means "check row by row" (it also
    answers False for valid RLEs written otherwise, e.g. with two spaces),
    so it can only ever be stricter than the row-by-row check.
    """
    codes = codes.fill_null("")
    if not pc.all(pc.match_substring_regex(codes, ENCODER_RLE)).as_py():
        return False
    nonempty = pc.greater(pc.binary_length(codes), 0)
    tokens = pc.ascii_split_whitespace(codes.filter(nonempty))
    if not len(tokens):
        return True
    try:
        values = pc.cast(pc.list_flatten(tokens), pa.int64()).to_numpy()
    except pa.ArrowInvalid:  # a number too large for int64
        return False
    pixels = pixels[nonempty.to_numpy(zero_copy_only=False)]
    if values.min() < 1 or values.max() > pixels.max():  # so the sums below stay far from int64's limit
        return False
    starts, lengths = values[0::2], values[1::2]
    ends = starts + lengths  # one past the run's last pixel, 1-indexed
    last = np.cumsum(tokens.value_lengths().to_numpy() // 2) - 1  # each row's last run
    same_row = np.ones(len(starts), dtype=bool)
    same_row[last] = False  # same_row[k]: run k + 1 is in run k's row
    if (starts[1:] <= ends[:-1])[same_row[:-1]].any():
        return False
    return bool((ends[last] - 1 <= pixels).all())
