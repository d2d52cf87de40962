"""Split by car: no leakage, seeded, the study's 254/64."""

import pandas as pd

from carmask.split import split_by_car


def frame(n_cars, views=16):
    cars = [f"{i:012x}" for i in range(n_cars)]
    return pd.DataFrame({"img": [f"{c}_{v:02d}.jpg" for c in cars for v in range(1, views + 1)], "car": [c for c in cars for _ in range(views)]})


def test_no_car_on_both_sides_and_study_counts():
    train, val = split_by_car(frame(318), 0.2, seed=42)
    assert set(train["car"]).isdisjoint(val["car"])
    assert (train["car"].nunique(), val["car"].nunique()) == (254, 64)
    assert len(train) + len(val) == 318 * 16


def test_deterministic_and_order_independent():
    f = frame(40)
    a = split_by_car(f, 0.25, seed=7)
    b = split_by_car(f.sample(frac=1, random_state=3), 0.25, seed=7)
    assert a[1].equals(b[1]) and a[0].equals(b[0])
    c = split_by_car(f, 0.25, seed=8)
    assert set(c[1]["car"]) != set(a[1]["car"])


def test_at_least_one_car_each_side():
    train, val = split_by_car(frame(2), 0.01, seed=0)
    assert train["car"].nunique() == 1 and val["car"].nunique() == 1
