"""The whole-column RLE check: it may only vouch for what rle.validate accepts, row by row."""

import numpy as np
import pyarrow as pa
import pytest

from carmask.masks import rle
from carmask.masks.rle_columns import all_valid


def row_by_row_valid(codes, pixels):
    """Each code as the row-by-row path judges it (the image is 1 x pixels: only the area counts)."""
    valid = []
    for code, n in zip(codes, pixels):
        try:
            rle.validate("" if code is None else code, 1, int(n))
            valid.append(True)
        except rle.RLEError:
            valid.append(False)
    return valid


def encoder_written(rng, pixels, at_least=0):
    """A random valid RLE of at least ``at_least`` runs inside ``pixels``, written as the encoder writes it."""
    n = min(int(rng.integers(at_least, 5)), pixels // 2)
    if n == 0:
        return ""
    cuts = np.sort(rng.choice(np.arange(1, pixels + 2), size=2 * n, replace=False))
    return " ".join(f"{a} {b - a}" for a, b in zip(cuts[0::2], cuts[1::2]))


BREAKS = {  # each turns a valid RLE of two runs or more into one rle.validate refuses
    "start 0": lambda pairs, pixels: [[0, pairs[0][1]]] + pairs[1:],
    "length 0": lambda pairs, pixels: [[pairs[0][0], 0]] + pairs[1:],
    "past the end": lambda pairs, pixels: pairs[:-1] + [[pairs[-1][0], pixels - pairs[-1][0] + 2]],
    "touching": lambda pairs, pixels: [[pairs[0][0], pairs[1][0] - pairs[0][0]]] + pairs[1:],
    "overlapping": lambda pairs, pixels: [pairs[1], pairs[0]] + pairs[2:],
    "odd count": lambda pairs, pixels: pairs + [[pixels]],
}


@pytest.mark.parametrize("seed", range(40))
def test_all_valid_vouches_only_for_what_validate_accepts(seed):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(2, 40, int(rng.integers(1, 30)))
    codes = [encoder_written(rng, int(n)) for n in pixels]
    codes[int(rng.integers(len(codes)))] = None  # a missing mask is an empty one
    assert all_valid(pa.array(codes, pa.large_string()), pixels)

    i = int(rng.integers(len(codes)))
    pixels[i] = max(pixels[i], 12)
    codes[i] = encoder_written(rng, int(pixels[i]), at_least=2)  # two runs at least, so every break breaks
    flat = [int(v) for v in codes[i].split()]
    pairs = [flat[k : k + 2] for k in range(0, len(flat), 2)]
    broken = BREAKS[list(BREAKS)[seed % len(BREAKS)]](pairs, int(pixels[i]))
    codes[i] = " ".join(str(v) for pair in broken for v in pair)
    assert not all(row_by_row_valid(codes, pixels))
    assert not all_valid(pa.array(codes, pa.large_string()), pixels)


def test_all_valid_declines_numbers_past_int64():
    assert not all_valid(pa.array(["1 1", "99999999999999999999 1"], pa.large_string()), np.array([10, 10]))


def test_all_valid_reads_each_row_on_its_own():
    """A run may start before the previous row's last run ended, and each row has its own image size."""
    codes = pa.array(["5 2 9 3", "1 1", "", "2 1 4 2"], pa.large_string())
    assert all_valid(codes, np.array([11, 1, 1, 5]))
    assert not all_valid(codes, np.array([10, 1, 1, 5]))  # the first row's last run ends at 11
    assert not all_valid(codes, np.array([11, 1, 1, 4]))  # the last row's: at 5


@pytest.mark.parametrize("code", ["1  2", " 1 2", "1 2 ", "1\t2", "1 2\n", "1 2\r\n", "nan", "NaN"])
def test_all_valid_leaves_other_valid_spellings_to_the_row_check(code):
    assert row_by_row_valid([code], [10]) == [True]
    assert not all_valid(pa.array(["1 1", code], pa.large_string()), np.array([10, 10]))
