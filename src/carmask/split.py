"""Train/validation split grouped by car.

The 16 views of one car are near-duplicates, so a split by image would leak
the validation cars into training and flatter the validation Dice. The split
is seeded and depends only on the sorted set of car ids, so it is the same on
every machine and for any file order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carmask import io


def split_by_car(
    train: pd.DataFrame, val_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split manifest rows into (train, val) with no car on both sides.

    The number of validation cars is ``round(n_cars * val_fraction)``, kept
    between 1 and ``n_cars - 1`` (318 real cars at 0.2 give 254/64).
    """
    cars = np.array(sorted(train["car"].unique()))
    if cars.size < 2:
        raise ValueError(f"need at least 2 cars to split, found {cars.size}")
    n_val = int(np.clip(round(cars.size * val_fraction), 1, cars.size - 1))
    rng = np.random.default_rng(seed)
    val_cars = set(rng.permutation(cars)[:n_val])
    is_val = train["car"].isin(val_cars)
    order = ["img"]
    return (
        train[~is_val].sort_values(order).reset_index(drop=True),
        train[is_val].sort_values(order).reset_index(drop=True),
    )


def write_split(manifest_path: str, train_out: str, val_out: str, val_fraction: float, seed: int) -> None:
    """Read the train manifest, split it by car, write both sides atomically."""
    train, val = split_by_car(pd.read_parquet(manifest_path), val_fraction, seed)
    io.write_parquet(train, train_out)
    io.write_parquet(val, val_out)
