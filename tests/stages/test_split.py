"""Split by car: no leakage, seeded by car id, stable when cars are added."""

import pandas as pd

from carmask.stages.split import car_score, split_by_car


def frame(n_cars, views=16, first=0):
    cars = [f"{i:012x}" for i in range(first, first + n_cars)]
    return pd.DataFrame({"img": [f"{c}_{v:02d}.jpg" for c in cars for v in range(1, views + 1)], "car": [c for c in cars for _ in range(views)]})


def test_no_car_on_both_sides_and_about_the_fraction():
    train, val = split_by_car(frame(318), 0.2, seed=42)
    assert set(train["car"]).isdisjoint(val["car"])
    assert len(train) + len(val) == 318 * 16
    n_val = val["car"].nunique()
    assert 40 <= n_val <= 88  # binomial(318, 0.2): 64 +- 3.4 sd
    # exactly the cars whose seeded score is under the fraction
    assert set(val["car"]) == {c for c in frame(318)["car"].unique() if car_score(c, 42) < 0.2}


def test_car_score_is_a_fixed_hash():
    # sha256("42:00087a6bd4dc")[:8] as a fraction of 2**64: the same on every machine
    import hashlib

    digest = hashlib.sha256(b"42:00087a6bd4dc").digest()
    assert car_score("00087a6bd4dc", 42) == int.from_bytes(digest[:8], "big") / 2**64
    assert 0 <= car_score("00087a6bd4dc", 42) < 1
    assert car_score("00087a6bd4dc", 43) != car_score("00087a6bd4dc", 42)


def test_deterministic_and_order_independent():
    f = frame(40)
    a = split_by_car(f, 0.25, seed=7)
    b = split_by_car(f.sample(frac=1, random_state=3), 0.25, seed=7)
    assert a[1].equals(b[1]) and a[0].equals(b[0])
    c = split_by_car(f, 0.25, seed=8)
    assert set(c[1]["car"]) != set(a[1]["car"])


def test_adding_cars_never_moves_existing_ones():
    # The old seeded permutation moved 3 of 5 validation cars when a 21st car came.
    before_train, before_val = split_by_car(frame(20), 0.25, seed=42)
    for extra in (1, 5, 60):
        train, val = split_by_car(frame(20 + extra), 0.25, seed=42)
        assert set(before_val["car"]) <= set(val["car"])
        assert set(before_train["car"]) <= set(train["car"])
    # a quarter of the data: its validation cars are the full data's, restricted
    _, quarter_val = split_by_car(frame(20, first=100), 0.25, seed=42)
    _, full_val = split_by_car(frame(80, first=80), 0.25, seed=42)
    assert set(quarter_val["car"]) == set(full_val["car"]) & set(frame(20, first=100)["car"])


def test_at_least_one_car_each_side():
    train, val = split_by_car(frame(2), 0.01, seed=0)
    assert train["car"].nunique() == 1 and val["car"].nunique() == 1
    train, val = split_by_car(frame(3), 0.999, seed=0)
    assert train["car"].nunique() == 1 and val["car"].nunique() == 2


def test_train_cars_nest_and_keep_the_validation_cars():
    # A learning curve: 13, 34 and all training cars, always the same validation cars.
    f = frame(80)
    full_train, full_val = split_by_car(f, 0.16, seed=42)
    sides = {n: split_by_car(f, 0.16, seed=42, train_cars=n) for n in (13, 34)}
    for n, (train, val) in sides.items():
        assert val.equals(full_val)
        assert train["car"].nunique() == n and (train.groupby("car").size() == 16).all()
        assert set(train["car"]) <= set(full_train["car"])
    assert set(sides[13][0]["car"]) <= set(sides[34][0]["car"])
    # the first by score: exactly the n lowest-scoring training cars
    ranked = sorted(full_train["car"].unique(), key=lambda c: car_score(c, 42))
    assert set(sides[13][0]["car"]) == set(ranked[:13])
    all_cars = full_train["car"].nunique()
    assert split_by_car(f, 0.16, seed=42, train_cars=all_cars)[0].equals(full_train)
    import pytest

    with pytest.raises(ValueError, match=f"only {all_cars} training cars"):
        split_by_car(f, 0.16, seed=42, train_cars=all_cars + 1)
