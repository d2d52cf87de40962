"""Train/validation split grouped by car.

The 16 views of one car are near-duplicates, so a split by image would leak
the validation cars into training and flatter the validation Dice.

Each car's side is decided by a seeded hash of its id alone: a car is in
validation when ``hash(seed, car)``, read as a number in [0, 1), is below
``val_fraction``. The split is the same on every machine and for any file
order, and adding cars to the data never moves the cars already there, so
validation figures stay comparable across data versions (a quarter of the
data's validation cars are the full data's validation cars among them).
The number of validation cars is therefore about, not exactly,
``val_fraction`` of them.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from carmask import files


def car_score(car: str, seed: int) -> float:
    """The car's seeded position in [0, 1): SHA-256 of ``"seed:car"``, first 8 bytes."""
    digest = hashlib.sha256(f"{seed}:{car}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_by_car(
    train: pd.DataFrame, val_fraction: float, seed: int, train_cars: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split manifest rows into (train, val) with no car on both sides.

    A car is in validation when ``car_score(car, seed) < val_fraction``.
    Each side keeps at least one car: if no car scores below the fraction,
    the lowest-scoring one validates; if every car does, the highest-scoring
    one trains (only tiny datasets meet these cases).

    ``train_cars`` keeps only the first that many training cars by score: a
    learning curve's points then nest (the 13 cars of one are among the 34
    of the next) and validate on the same cars.
    """
    cars = sorted(train["car"].unique())
    if len(cars) < 2:
        raise ValueError(f"need at least 2 cars to split, found {len(cars)}")
    scores = {car: car_score(car, seed) for car in cars}
    val_cars = {car for car in cars if scores[car] < val_fraction}
    if not val_cars:
        val_cars = {min(cars, key=scores.__getitem__)}
    elif len(val_cars) == len(cars):
        val_cars.discard(max(cars, key=scores.__getitem__))
    train_side = sorted((car for car in cars if car not in val_cars), key=scores.__getitem__)
    if train_cars is not None:
        if train_cars < 1:
            raise ValueError(f"train_cars must be at least 1, got {train_cars}")
        if train_cars > len(train_side):
            raise ValueError(f"train_cars is {train_cars}, but the split has only {len(train_side)} training cars")
        train_side = train_side[:train_cars]
    is_val = train["car"].isin(val_cars)
    is_train = train["car"].isin(train_side)
    order = ["img"]
    return (
        train[is_train].sort_values(order).reset_index(drop=True),
        train[is_val].sort_values(order).reset_index(drop=True),
    )


def write_split(
    manifest_path: str, train_out: str, val_out: str, val_fraction: float, seed: int, train_cars: int | None = None
) -> None:
    """Read the train manifest, split it by car, write both sides atomically."""
    train, val = split_by_car(pd.read_parquet(manifest_path), val_fraction, seed, train_cars)
    files.write_parquet(train, train_out)
    files.write_parquet(val, val_out)
