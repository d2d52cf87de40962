"""A synthetic Carvana-like dataset in Kaggle's exact folder layout.

Why it exists: the pipeline must run end to end (and in CI) without the 25 GB
Kaggle download, so this module writes a small stand-in that every stage
reads exactly as it reads the real thing::

    out_dir/train/<car>_<NN>.jpg             RGB JPEG photos, width x height
    out_dir/train_masks/<car>_<NN>_mask.gif  palette GIF, values {0, 1}
    out_dir/test/<car>_<NN>.jpg
    out_dir/train_masks.csv                  img,rle_mask (carmask.rle)
    out_dir/sample_submission.csv            img,rle_mask with "1 1"
    out_dir/metadata.csv                     id,year,make,model,trim1,trim2

The photos imitate Carvana's rotating studio, because that is what the models
learn from: a fixed camera, a turntable, a light-grey wall meeting a floor at a
soft horizon, and a car seen from ``views`` angles (view ``k`` at
``2*pi*(k-1)/views``: 01 front, then round the car). Each car is a small
low-poly 3-D model (a lofted body profile, a cabin, four wheels, two mirrors)
projected with a perspective camera and painted back to front, so its
silhouette really changes with the angle (long profile at the side, narrow at
front and back). What breaks naive background removal in the real data is
copied on purpose: about a third of the cars are white or silver, paint
reflects the wall above a "horizon" line on the doors and the floor below it,
near-white specular streaks sit on the shoulders, hood, roof and glass, a
soft shadow lies under the car, and sensor noise plus JPEG remove exact pixel
values. The mask is the exact union of the projected car faces (body, cabin,
wheels, mirrors; never the shadow) and the photo's car pixels are composited
through that same mask, so mask and photo always agree.

Speed: every shape is a Pillow polygon at full resolution, the backdrop is
built once per car from a 1-pixel gradient column and vignette row stretched
by Pillow, only the small shadow layer is blurred (at 1/8 size), noise is a
crop of one pre-drawn noise image, and the per-view compositing touches only
the car's bounding box. The default dataset (12 cars x 16 views at 1918x1280,
192 photos and 128 masks) takes about 12 s of CPU on one core; JPEG and GIF
encoding are about a third of it.

Determinism: every random choice comes from numpy generators spawned from
one ``SeedSequence(seed)`` (one stream per car and per view), and Pillow's
JPEG/GIF encoders are deterministic, so a rerun with the same arguments
writes byte-identical files.
Every file is written through :func:`carmask.files.atomic_path` and the CSVs come
last, so a killed run never leaves a half file under a final name, nor a CSV
that lists photos which do not exist.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from carmask import rle
from carmask.files import atomic_path, write_text

__all__ = ["generate"]

_Colour = tuple[float, float, float]

#: Noise image margin: each view crops the noise at a random offset in it.
_NOISE_PAD = 32
#: Noise is stored offset by this much (ImageChops.add takes no signed image).
_NOISE_BIAS = 4
#: Shadow layer is drawn and blurred at about this width (1/8 of Kaggle's).
_SHADOW_TARGET_WIDTH = 240
#: Masks are palette images like Kaggle's: index 0 black, index 1 white.
_MASK_PALETTE = [0, 0, 0, 255, 255, 255]
#: Light 3x3 blur of the mask used as the car's alpha: antialiases the outline.
_EDGE_SOFTEN = ImageFilter.Kernel((3, 3), [1, 2, 1, 2, 12, 2, 1, 2, 1], scale=24)


# --------------------------------------------------------------------------
# Car models
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    """Ranges of proportions (metres) for one body style, plus its metadata pool."""

    name: str
    length: tuple[float, float]
    width: tuple[float, float]
    belt: tuple[float, float]  # height of the body top (window sill)
    roof: tuple[float, float]
    clearance: tuple[float, float]
    wheel_r: tuple[float, float]
    hood: tuple[float, float]  # cabin front, as a fraction of length from the nose
    deck: tuple[float, float]  # cabin rear, as a fraction of length from the tail
    windshield: tuple[float, float]  # horizontal run of the windshield
    rear_glass: tuple[float, float]  # horizontal run of the rear window
    overhang_f: tuple[float, float]  # front wheel centre, fraction of length from nose
    overhang_r: tuple[float, float]
    hood_drop: tuple[float, float]
    windows: int  # side windows per side
    models: tuple[tuple[str, str, tuple[str, ...]], ...]


_STYLES: tuple[_Style, ...] = (
    _Style(
        "sedan", (4.45, 4.95), (1.76, 1.88), (0.86, 0.95), (1.40, 1.50), (0.13, 0.17),
        (0.31, 0.345), (0.24, 0.29), (0.15, 0.20), (0.65, 0.85), (0.50, 0.70),
        (0.18, 0.22), (0.19, 0.24), (0.08, 0.14), 2,
        (
            ("Toyota", "Camry", ("LE", "SE", "XLE", "Hybrid LE")),
            ("Honda", "Accord", ("LX", "EX", "EX-L", "Sport")),
            ("Nissan", "Altima", ("2.5 S", "2.5 SV", "3.5 SL")),
            ("Ford", "Fusion", ("S", "SE", "Titanium")),
            ("Chevrolet", "Malibu", ("LS", "LT", "LTZ")),
            ("Hyundai", "Sonata", ("GLS", "SE", "Limited")),
            ("BMW", "3 Series", ("328i", "335i", "328i xDrive")),
            ("Mercedes-Benz", "C-Class", ("C250", "C300", "C350")),
            ("Acura", "TL", ("TL", "SH-AWD")),
        ),
    ),
    _Style(
        "suv", (4.40, 4.95), (1.84, 1.97), (1.00, 1.10), (1.66, 1.80), (0.19, 0.24),
        (0.36, 0.40), (0.21, 0.26), (0.02, 0.05), (0.55, 0.75), (0.12, 0.25),
        (0.17, 0.21), (0.19, 0.23), (0.05, 0.10), 3,
        (
            ("Ford", "Explorer", ("Base", "XLT", "Limited")),
            ("Honda", "CR-V", ("LX", "EX", "EX-L")),
            ("Toyota", "RAV4", ("LE", "XLE", "Limited")),
            ("Jeep", "Grand Cherokee", ("Laredo", "Limited", "Overland")),
            ("Chevrolet", "Equinox", ("LS", "LT", "LTZ")),
            ("Nissan", "Rogue", ("S", "SV", "SL")),
            ("Hyundai", "Santa Fe", ("GLS", "Sport", "Limited")),
            ("Subaru", "Forester", ("2.5i", "2.5i Premium", "2.0XT")),
        ),
    ),
    _Style(
        "hatchback", (3.90, 4.35), (1.70, 1.80), (0.88, 0.96), (1.44, 1.54), (0.13, 0.16),
        (0.30, 0.33), (0.22, 0.27), (0.02, 0.05), (0.70, 0.90), (0.25, 0.40),
        (0.17, 0.21), (0.15, 0.19), (0.07, 0.12), 2,
        (
            ("Volkswagen", "Golf", ("TSI S", "TSI SE", "GTI")),
            ("Ford", "Focus", ("SE", "Titanium", "ST")),
            ("Honda", "Fit", ("LX", "Sport", "EX")),
            ("Mazda", "Mazda3", ("i Touring", "s Grand Touring")),
            ("Toyota", "Prius", ("Two", "Three", "Four")),
            ("Kia", "Soul", ("Base", "+", "!")),
            ("Hyundai", "Elantra GT", ("Base",)),
        ),
    ),
)

_TRIM2 = ("", "", "", "FWD", "AWD", "4WD", "w/Nav", "w/Sport Pkg", "w/Technology Pkg", "Hatchback")

#: Paints near the studio background: the hard cases (white, pearl, silver).
_PALE_PAINTS: tuple[_Colour, ...] = (
    (238.0, 238.0, 236.0), (242.0, 241.0, 236.0), (232.0, 230.0, 222.0),
    (203.0, 205.0, 209.0), (214.0, 215.0, 217.0),
)
_OTHER_PAINTS: tuple[_Colour, ...] = (
    (22.0, 23.0, 25.0), (30.0, 30.0, 34.0), (72.0, 74.0, 78.0), (118.0, 120.0, 124.0),
    (150.0, 22.0, 26.0), (120.0, 18.0, 30.0), (24.0, 38.0, 88.0), (40.0, 82.0, 160.0),
    (188.0, 174.0, 142.0), (38.0, 72.0, 50.0), (86.0, 58.0, 40.0), (196.0, 92.0, 24.0),
)


@dataclass(frozen=True)
class _Material:
    """A paint: base colour, how much it mirrors the studio, which part it mirrors."""

    rgb: _Colour
    refl: float = 0.1
    env: str = "auto"  # "auto": wall for faces looking up or sideways, "floor": floor


@dataclass(frozen=True)
class _Decal:
    """A flat polygon painted on a face (lights, windows, seams, highlights).

    Its colour is ``material`` shaded like the face (or the face's own colour
    when None), then mixed ``alpha`` of the way towards ``tint``.
    """

    pts: np.ndarray  # (n, 3) car coordinates, on the face's plane
    material: _Material | None = None
    tint: _Colour = (0.0, 0.0, 0.0)
    alpha: float = 0.0


@dataclass(eq=False)
class _Face:
    """A planar convex face of a part, with its outward normal and decals."""

    idx: np.ndarray
    material: _Material
    normal: np.ndarray = field(default_factory=lambda: np.zeros(3))
    point: np.ndarray = field(default_factory=lambda: np.zeros(3))
    key: str = ""
    decals: list[_Decal] = field(default_factory=list)


@dataclass(eq=False)
class _Part:
    """A convex polyhedron: vertices, faces; drawn by back-face culling alone."""

    verts: np.ndarray
    faces: list[_Face]

    def __post_init__(self) -> None:
        centre = self.verts.mean(axis=0)
        for face in self.faces:
            pts = self.verts[face.idx]
            # Newell's normal: robust for any planar (or nearly planar) polygon.
            nxt = np.roll(pts, -1, axis=0)
            normal = np.array([
                np.sum((pts[:, 1] - nxt[:, 1]) * (pts[:, 2] + nxt[:, 2])),
                np.sum((pts[:, 2] - nxt[:, 2]) * (pts[:, 0] + nxt[:, 0])),
                np.sum((pts[:, 0] - nxt[:, 0]) * (pts[:, 1] + nxt[:, 1])),
            ])
            norm = float(np.linalg.norm(normal))
            normal = normal / norm if norm > 0 else np.array([0.0, 0.0, 1.0])
            face.point = pts.mean(axis=0)
            if np.dot(normal, face.point - centre) < 0:
                normal = -normal
            face.normal = normal


@dataclass(eq=False)
class _Car:
    """One car: its 3-D parts, the numbers per-view decals need, and its metadata."""

    car_id: str
    style: _Style
    paint: _Material
    length: float
    width: float
    belt: float
    clearance: float
    wheel_r: float
    body: _Part
    cabin: _Part
    wheels: list[_Part]
    mirrors: list[_Part]
    cap_profile: np.ndarray  # (m, 2) x-z outline of the outer body side
    hood_quad: np.ndarray  # (4, 3) A, B, C, D for _quad_points
    roof_quad: np.ndarray
    windshield_quad: np.ndarray
    rear_quad: np.ndarray
    streak_z: float
    streak_h: float
    phase: float
    metadata: dict[str, str]


def _u(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A uniform draw in ``bounds`` (shorthand that keeps the proportions readable)."""
    return float(rng.uniform(bounds[0], bounds[1]))


def _quad_points(quad: np.ndarray, st: Sequence[tuple[float, float]]) -> np.ndarray:
    """Map (s, t) in the unit square onto a quad A(0,0) B(1,0) C(1,1) D(0,1).

    Decals are laid out in these face coordinates, so they follow each car's
    proportions without any per-style arithmetic.
    """
    a, b, c, d = quad
    st_arr = np.asarray(st, dtype=float)
    s, t = st_arr[:, :1], st_arr[:, 1:2]
    return (1 - t) * ((1 - s) * a + s * b) + t * ((1 - s) * d + s * c)


def _ellipse_st(cs: float, ct: float, rs: float, rt: float, n: int = 16) -> list[tuple[float, float]]:
    """An ellipse in face coordinates, clamped to the face."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [
        (min(max(cs + rs * math.cos(a), 0.0), 1.0), min(max(ct + rt * math.sin(a), 0.0), 1.0))
        for a in ang
    ]


def _rect_st(s0: float, s1: float, t0: float, t1: float) -> list[tuple[float, float]]:
    """A rectangle in face coordinates."""
    return [(s0, t0), (s1, t0), (s1, t1), (s0, t1)]


def _clip_halfplane(poly: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """Clip a 2-D convex polygon to ``a*x + b*y <= c`` (one Sutherland-Hodgman pass)."""
    out: list[np.ndarray] = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        fp, fq = a * p[0] + b * p[1] - c, a * q[0] + b * q[1] - c
        if fp <= 0:
            out.append(p)
        if (fp < 0 < fq) or (fq < 0 < fp):
            out.append(p + (q - p) * (fp / (fp - fq)))
    return np.array(out) if out else np.zeros((0, 2))


def _clip_convex(poly: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Clip a 2-D polygon to a convex counter-clockwise polygon ``clip``."""
    out = np.asarray(poly, dtype=float)
    n = len(clip)
    for i in range(n):
        if len(out) == 0:
            break
        p, q = clip[i], clip[(i + 1) % n]
        # Inside of a CCW edge p->q is to its left: cross(q-p, x-p) >= 0.
        ex, ey = q[0] - p[0], q[1] - p[1]
        out = _clip_halfplane(out, ey, -ex, ey * p[0] - ex * p[1])
    return out


def _is_convex_ccw(poly: np.ndarray) -> bool:
    """Whether a 2-D polygon turns left at every vertex (convex, counter-clockwise)."""
    d = np.roll(poly, -1, axis=0) - poly
    cross = d[:, 0] * np.roll(d[:, 1], -1) - d[:, 1] * np.roll(d[:, 0], -1)
    return bool(np.all(cross > 0))


def _on_side(pts_xz: np.ndarray, y: float) -> np.ndarray:
    """Lift x-z points onto the plane ``y`` (the body's outer side)."""
    return np.column_stack([pts_xz[:, 0], np.full(len(pts_xz), y), pts_xz[:, 1]])


def _disc_xz(cx: float, cz: float, r: float, n: int = 20) -> np.ndarray:
    """A circle as an n-gon in the x-z plane."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([cx + r * np.cos(ang), cz + r * np.sin(ang)])


def _box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, mat: _Material) -> _Part:
    """An axis-aligned box part (mirrors)."""
    v = np.array([[x, y, z] for z in (z0, z1) for y in (y0, y1) for x in (x0, x1)], dtype=float)
    quads = ((0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5))
    return _Part(v, [_Face(np.array(q), mat) for q in quads])


def _wheel(xc: float, y_out: float, y_in: float, r: float, spokes: int, rim: _Material,
           tyre: _Material, n: int = 20) -> _Part:
    """A wheel: a cylinder across y, tyre-coloured, with a spoked rim on its outer cap."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.column_stack([xc + r * np.cos(ang), r + r * np.sin(ang)])
    verts = np.vstack([_on_side(ring, y_out), _on_side(ring, y_in)])
    faces = [_Face(np.arange(n), tyre, key="outer"), _Face(np.arange(n, 2 * n), tyre)]
    faces += [_Face(np.array([i, (i + 1) % n, n + (i + 1) % n, n + i]), tyre) for i in range(n)]
    dark = _Material((38.0, 38.0, 40.0), 0.05)
    decals = [
        _Decal(_on_side(_disc_xz(xc, r, 0.68 * r), y_out), rim),
        _Decal(_on_side(_disc_xz(xc, r, 0.58 * r), y_out), dark),
    ]
    for k in range(spokes):
        a = 2 * np.pi * k / spokes + 0.3
        w = 0.09
        pts = np.array([
            [xc + 0.15 * r * math.cos(a - w * 2), r + 0.15 * r * math.sin(a - w * 2)],
            [xc + 0.60 * r * math.cos(a - w), r + 0.60 * r * math.sin(a - w)],
            [xc + 0.60 * r * math.cos(a + w), r + 0.60 * r * math.sin(a + w)],
            [xc + 0.15 * r * math.cos(a + w * 2), r + 0.15 * r * math.sin(a + w * 2)],
        ])
        decals.append(_Decal(_on_side(pts, y_out), rim))
    decals.append(_Decal(_on_side(_disc_xz(xc, r, 0.17 * r, 12), y_out), rim))
    faces[0].decals = decals
    return _Part(verts, faces)


def _round_profile(profile: np.ndarray, cuts: Sequence[float]) -> np.ndarray:
    """Cut every corner of a convex polygon (one chamfer per vertex) to round it.

    Vertex ``j`` becomes two points ``cuts[j]`` metres along its two edges
    (at most 30% of either edge, so the result stays convex). In the result,
    original edge ``j`` is the segment from point ``2j+1`` to point ``2j+2``.
    """
    m = len(profile)
    out = []
    for j in range(m):
        p, prev, nxt = profile[j], profile[j - 1], profile[(j + 1) % m]
        to_prev, to_next = prev - p, nxt - p
        lp, ln = float(np.linalg.norm(to_prev)), float(np.linalg.norm(to_next))
        d = min(cuts[j], 0.3 * lp, 0.3 * ln)
        out.append(p + to_prev * (d / lp))
        out.append(p + to_next * (d / ln))
    return np.array(out)


@dataclass
class _Frame:
    """One car's proportions along its length (x), across (y) and up (z), in metres."""

    style: _Style
    length: float
    width: float
    belt: float
    roof: float
    clearance: float
    wheel_r: float
    hood_drop: float


@dataclass
class _Stations:
    """Where the body puts the cabin and the wheels (x along the car, metres)."""

    x_cf: float  # cabin front and rear on the body top
    x_cr: float
    deck_drop: float  # how far the rear deck sits below the belt
    x_wf: float  # wheel centres
    x_wr: float


@dataclass
class _Paints:
    """The materials of one car."""

    paint: _Material
    paint_floor: _Material
    glass: _Material
    tyre: _Material
    rim: _Material
    dark: _Material


_BLACK: _Colour = (0.0, 0.0, 0.0)
_WHITE: _Colour = (252.0, 252.0, 252.0)


def _draw_frame(rng: np.random.Generator) -> _Frame:
    """A body style and the proportions drawn from its ranges."""
    style = _STYLES[int(rng.integers(len(_STYLES)))]
    length, width = _u(rng, style.length), _u(rng, style.width)
    belt, roof = _u(rng, style.belt), _u(rng, style.roof)
    c, r = _u(rng, style.clearance), _u(rng, style.wheel_r)
    return _Frame(style, length, width, belt, roof, c, r, hood_drop=_u(rng, style.hood_drop))


def _draw_paints(rng: np.random.Generator, paint_rgb: _Colour) -> _Paints:
    """The car's paint (varied a little), glass, tyres, rims and trim."""
    base = np.array(paint_rgb) + rng.uniform(-4, 4, 3)
    paint = _Material(tuple(np.clip(base, 0, 255)), _u(rng, (0.07, 0.15)))
    tinted = rng.random() < 0.5
    glass = _Material((18.0, 20.0, 24.0) if tinted else (26.0, 31.0, 37.0), _u(rng, (0.14, 0.26)))
    rim = _Material((176.0, 179.0, 184.0) if rng.random() < 0.7 else (60.0, 61.0, 66.0), 0.2)
    return _Paints(
        paint=paint,
        paint_floor=_Material(paint.rgb, min(paint.refl + 0.12, 0.4), "floor"),
        glass=glass,
        tyre=_Material((27.0, 27.0, 29.0), 0.03),
        rim=rim,
        dark=_Material((26.0, 26.0, 28.0), 0.08),
    )


def _build_body(rng: np.random.Generator, f: _Frame, mats: _Paints) -> tuple[_Part, dict[str, np.ndarray], np.ndarray, _Stations]:
    """The lower body: a rounded side profile swept across the car.

    Returns the part, its named side quads (for decals), the outer side's
    x-z outline and where the cabin and the wheels go.
    """
    style, length, belt, c = f.style, f.length, f.belt, f.clearance
    xf, xr = length / 2, -length / 2
    # Side profile of the lower body, counter-clockwise in x-z.
    x_cf = xf - _u(rng, style.hood) * length
    x_cr = xr + _u(rng, style.deck) * length
    deck_drop = _u(rng, (0.02, 0.05))
    st = _Stations(x_cf, x_cr, deck_drop, xf - _u(rng, style.overhang_f) * length, xr + _u(rng, style.overhang_r) * length)
    # The bumpers' undersides rise from the sills (approach/departure angles),
    # which is what lets the tyres show under them at front and back views.
    # With the bumper's bottom corner at (beta * overhang, alpha * nose), the
    # profile turns left there iff alpha + beta < 1; the ranges below keep
    # alpha + beta <= 0.9, so every car's profile is convex (tested).
    nose = (belt - c) * _u(rng, (0.30, 0.42))
    tail = (belt - c) * _u(rng, (0.35, 0.50))
    corners = np.array([
        [xf - (xf - st.x_wf) * _u(rng, (0.15, 0.35)), c + nose * _u(rng, (0.3, 0.55))],
        [xf, c + nose],
        [xf - _u(rng, (0.04, 0.10)), belt - f.hood_drop],
        [st.x_cf, belt],
        [xr + _u(rng, (0.04, 0.10)), belt - st.deck_drop],
        [xr, c + tail],
        [xr + (st.x_wr - xr) * _u(rng, (0.15, 0.35)), c + tail * _u(rng, (0.3, 0.55))],
        [st.x_wr, c],
        [st.x_wf, c],
    ])
    edge_names = ["lower_front", "fascia", "hood", "top", "rear_fascia", "rear_lower",
                  "rear_under", "under", "front_under"]
    cuts = [0.06, 0.12, _u(rng, (0.08, 0.16)), 0.1, _u(rng, (0.08, 0.14)), 0.1, 0.06, 0.04, 0.04]
    profile = _round_profile(corners, cuts)
    m = len(profile)
    # Odd edge 2j+1 of the rounded profile is original edge j; even edges are the cut corners.
    names = [edge_names[(e - 1) // 2] if e % 2 else "corner" for e in range(m)]
    zc = (c + belt) / 2
    shrink = _u(rng, (0.955, 0.97))
    chamfer = _u(rng, (0.09, 0.15))
    centre = np.array([0.0, zc])
    # Four slices across the car: the outer two shrunk (homothety about the
    # profile's middle keeps every quad planar), which rounds the body in plan.
    w = f.width
    slices = [(-w / 2, shrink), (-w / 2 + chamfer, 1.0), (w / 2 - chamfer, 1.0), (w / 2, shrink)]
    verts = np.vstack([_on_side(centre + s * (profile - centre), y) for y, s in slices])
    cap = centre + shrink * (profile - centre)

    faces = [_Face(np.arange(m), mats.paint, key="cap-"), _Face(np.arange(3 * m, 4 * m), mats.paint, key="cap+")]
    quads: dict[str, np.ndarray] = {}
    for i in range(3):
        for j in range(m):
            idx = np.array([i * m + j, (i + 1) * m + j, (i + 1) * m + (j + 1) % m, i * m + (j + 1) % m])
            key = names[j] if i == 1 else "chamfer"
            mat = mats.dark if names[j].endswith("under") else mats.paint
            faces.append(_Face(idx, mat, key=key))
            if i == 1 and key != "corner":
                quads[key] = verts[idx]
    return _Part(verts, faces), quads, cap, st


def _add_front_and_rear(by_key: dict[str, _Face], quads: dict[str, np.ndarray], dark: _Material) -> None:
    """Lights, grille, plates, intake and diffuser, in face coordinates (s across, t along the edge)."""
    head = _Material((206.0, 211.0, 216.0), 0.35)
    tail_light = _Material((152.0, 18.0, 24.0), 0.2)
    plate = _Material((232.0, 232.0, 226.0), 0.1)
    chrome = _Material((178.0, 180.0, 186.0), 0.3)
    fq = quads["fascia"]
    by_key["fascia"].decals = [
        _Decal(_quad_points(fq, [(0.03, 0.58), (0.27, 0.52), (0.25, 0.88), (0.03, 0.92)]), head),
        _Decal(_quad_points(fq, [(0.97, 0.58), (0.73, 0.52), (0.75, 0.88), (0.97, 0.92)]), head),
        _Decal(_quad_points(fq, [(0.06, 0.72), (0.12, 0.70), (0.12, 0.8), (0.06, 0.82)]), tint=_WHITE, alpha=0.9),
        _Decal(_quad_points(fq, [(0.94, 0.72), (0.88, 0.70), (0.88, 0.8), (0.94, 0.82)]), tint=_WHITE, alpha=0.9),
        _Decal(_quad_points(fq, _rect_st(0.29, 0.71, 0.30, 0.80)), chrome),
        _Decal(_quad_points(fq, _rect_st(0.31, 0.69, 0.33, 0.77)), dark),
        _Decal(_quad_points(fq, _rect_st(0.41, 0.59, 0.04, 0.26)), plate),
    ]
    by_key["lower_front"].decals = [
        _Decal(_quad_points(quads["lower_front"], _rect_st(0.2, 0.8, 0.25, 0.8)), dark),  # air intake
    ]
    rq = quads["rear_fascia"]
    by_key["rear_fascia"].decals = [
        _Decal(_quad_points(rq, _rect_st(0.02, 0.25, 0.05, 0.36)), tail_light),
        _Decal(_quad_points(rq, _rect_st(0.75, 0.98, 0.05, 0.36)), tail_light),
        _Decal(_quad_points(rq, _rect_st(0.40, 0.60, 0.38, 0.70)), plate),
    ]
    by_key["rear_lower"].decals = [
        _Decal(_quad_points(quads["rear_lower"], _rect_st(0.1, 0.9, 0.3, 0.85)), dark),  # diffuser
    ]


def _build_wheels(rng: np.random.Generator, f: _Frame, st: _Stations, mats: _Paints) -> list[_Part]:
    """Four wheels, inset from the body side."""
    tyre_w = _u(rng, (0.20, 0.26))
    spokes = int(rng.integers(5, 8))
    wheels = []
    for sign in (-1.0, 1.0):
        y_out = sign * (f.width / 2 - 0.025)
        for xw in (st.x_wf, st.x_wr):
            wheels.append(_wheel(xw, y_out, y_out - sign * tyre_w, f.wheel_r, spokes, mats.rim, mats.tyre))
    return wheels


def _add_body_sides(
    rng: np.random.Generator, by_key: dict[str, _Face], f: _Frame, st: _Stations, mats: _Paints, cap: np.ndarray
) -> float:
    """Floor reflection below a "horizon", seams, handles and arches on both sides; returns the B-pillar's x."""
    c, r, belt = f.clearance, f.wheel_r, f.belt
    z_ref = c + (belt - c) * _u(rng, (0.38, 0.55))
    cap_top = float(cap[:, 1].max())
    x_b = st.x_cf + (st.x_cr - st.x_cf) * _u(rng, (0.42, 0.5))
    seams = (st.x_cf - 0.06, x_b, st.x_wr + r + 0.08)  # front door, B-pillar, rear door
    for sign, key in ((-1.0, "cap-"), (1.0, "cap+")):
        y = sign * f.width / 2
        decals = [
            _Decal(_on_side(_clip_halfplane(cap, 0, 1, z_ref), y), mats.paint_floor),
            _Decal(_on_side(_clip_halfplane(cap, 0, -1, -(cap_top - 0.07)), y), tint=_WHITE, alpha=0.12),
            _Decal(_on_side(_clip_halfplane(cap, 0, 1, c + 0.07), y), tint=_BLACK, alpha=0.45),
        ]
        for xs in seams:
            seam = np.array([[xs - 0.006, c + 0.07], [xs + 0.006, c + 0.07],
                             [xs + 0.006, belt - 0.04], [xs - 0.006, belt - 0.04]])
            decals.append(_Decal(_on_side(_clip_convex(seam, cap), y), tint=_BLACK, alpha=0.5))
        for xh in (x_b + 0.12, st.x_cf - 0.2):  # door handles
            handle = np.array([[xh - 0.13, belt - 0.15], [xh, belt - 0.15],
                               [xh, belt - 0.12], [xh - 0.13, belt - 0.12]])
            decals.append(_Decal(_on_side(handle, y), tint=_BLACK, alpha=0.35))
        for xw in (st.x_wf, st.x_wr):
            arch = _clip_convex(_disc_xz(xw, r, r + 0.05, 24), cap)
            decals.append(_Decal(_on_side(arch, y), _Material((16.0, 16.0, 18.0), 0.02)))
        by_key[key].decals = decals
    return x_b


def _build_cabin(rng: np.random.Generator, f: _Frame, st: _Stations, mats: _Paints, x_b: float) -> tuple[_Part, np.ndarray, float]:
    """The greenhouse: a frustum on the body, narrower at the roof, with its windows.

    Returns the part, its vertices and the half-width at its base.
    """
    style, length, roof = f.style, f.length, f.roof
    zb = f.belt - st.deck_drop - 0.01
    wb = f.width / 2 - _u(rng, (0.05, 0.09))
    wt = wb - _u(rng, (0.12, 0.18))
    x_rf = st.x_cf - _u(rng, style.windshield)
    x_rr = st.x_cr + _u(rng, style.rear_glass)
    if x_rf - x_rr < 0.25 * length:  # keep a roof of plausible length
        mid, half = (x_rf + x_rr) / 2, 0.125 * length
        x_rf, x_rr = min(mid + half, st.x_cf - 0.3), max(mid - half, st.x_cr + 0.1)
    cv = np.array([
        [st.x_cf, -wb, zb], [st.x_cf, wb, zb], [st.x_cr, wb, zb], [st.x_cr, -wb, zb],
        [x_rf, -wt, roof], [x_rf, wt, roof], [x_rr, wt, roof], [x_rr, -wt, roof],
    ])
    paint, glass = mats.paint, mats.glass
    cabin = _Part(cv, [
        _Face(np.array([0, 1, 2, 3]), paint),
        _Face(np.array([4, 5, 6, 7]), paint, key="roof"),
        _Face(np.array([0, 1, 5, 4]), paint, key="windshield"),
        _Face(np.array([2, 3, 7, 6]), paint, key="rear"),
        _Face(np.array([1, 2, 6, 5]), paint, key="side+"),
        _Face(np.array([3, 0, 4, 7]), paint, key="side-"),
    ])
    cab = {face.key: face for face in cabin.faces}
    cab["windshield"].decals = [_Decal(_quad_points(cv[[0, 1, 5, 4]], _rect_st(0.035, 0.965, 0.03, 0.95)), glass)]
    rear_t0 = 0.06 if style.name == "sedan" else 0.2
    cab["rear"].decals = [_Decal(_quad_points(cv[[3, 2, 6, 7]], _rect_st(0.06, 0.94, rear_t0, 0.93)), glass)]
    u_b = (st.x_cf - x_b) / (st.x_cf - st.x_cr)
    splits = [0.04, u_b - 0.03, u_b + 0.03, 0.96]
    if style.windows == 3:
        u_c = u_b + (0.96 - u_b) * 0.62
        splits = [0.04, u_b - 0.03, u_b + 0.03, u_c - 0.025, u_c + 0.025, 0.96]
    for key, quad in (("side+", cv[[1, 2, 6, 5]]), ("side-", cv[[0, 3, 7, 4]])):
        cab[key].decals = [
            _Decal(_quad_points(quad, _rect_st(splits[i], splits[i + 1], 0.07, 0.9)), glass)
            for i in range(0, len(splits), 2)
        ]
    return cabin, cv, wb


def _build_mirrors(rng: np.random.Generator, f: _Frame, st: _Stations, mats: _Paints, cv: np.ndarray, wb: float) -> list[_Part]:
    """Mirrors stick out past the body from the A-pillar, just above the sill."""
    belt, zb, x_rf = f.belt, cv[0, 2], cv[4, 0]
    xm = st.x_cf - (belt + 0.09 - zb) / (f.roof - zb) * (st.x_cf - x_rf) + 0.02
    mirror_paint = mats.paint if rng.random() < 0.7 else mats.dark
    return [
        _box(xm - 0.06, xm + 0.06, -wb - 0.21, -wb + 0.03, belt + 0.03, belt + 0.15, mirror_paint),
        _box(xm - 0.06, xm + 0.06, wb - 0.03, wb + 0.21, belt + 0.03, belt + 0.15, mirror_paint),
    ]


def _draw_metadata(rng: np.random.Generator, style: _Style, car_id: str) -> dict[str, str]:
    """A row of Kaggle's metadata.csv for the car: year, make, model, trims."""
    make, model, trims = style.models[int(rng.integers(len(style.models)))]
    return {
        "id": car_id,
        "year": str(int(rng.integers(2004, 2018))),
        "make": make,
        "model": model,
        "trim1": trims[int(rng.integers(len(trims)))],
        "trim2": _TRIM2[int(rng.integers(len(_TRIM2)))],
    }


def _make_car(rng: np.random.Generator, car_id: str, paint_rgb: _Colour) -> _Car:
    """Draw one car's proportions and metadata, and build its 3-D parts.

    Part by part, always in this order: the draws from ``rng`` happen in a
    fixed sequence, which is what makes the same seed give the same car.
    """
    f = _draw_frame(rng)
    mats = _draw_paints(rng, paint_rgb)
    body, quads, cap, st = _build_body(rng, f, mats)
    by_key = {face.key: face for face in body.faces if face.key not in ("chamfer", "corner")}
    _add_front_and_rear(by_key, quads, mats.dark)
    wheels = _build_wheels(rng, f, st, mats)
    x_b = _add_body_sides(rng, by_key, f, st, mats, cap)
    cabin, cv, wb = _build_cabin(rng, f, st, mats, x_b)
    mirrors = _build_mirrors(rng, f, st, mats, cv, wb)
    metadata = _draw_metadata(rng, f.style, car_id)
    return _Car(
        car_id=car_id, style=f.style, paint=mats.paint, length=f.length, width=f.width, belt=f.belt,
        clearance=f.clearance, wheel_r=f.wheel_r, body=body, cabin=cabin, wheels=wheels, mirrors=mirrors,
        cap_profile=cap, hood_quad=quads["hood"][[0, 1, 2, 3]], roof_quad=cv[[4, 5, 6, 7]],
        windshield_quad=cv[[0, 1, 5, 4]], rear_quad=cv[[3, 2, 6, 7]],
        streak_z=f.clearance + (f.belt - f.clearance) * _u(rng, (0.62, 0.82)), streak_h=_u(rng, (0.03, 0.06)),
        phase=_u(rng, (0, 2 * np.pi)), metadata=metadata,
    )


# --------------------------------------------------------------------------
# Studio, camera, rendering
# --------------------------------------------------------------------------


@dataclass
class _Studio:
    """One car's photo session: fixed camera, lights and backdrop for all views."""

    width: int
    height: int
    focal: float
    distance: float
    cam_height: float
    target_z: float
    cx: float
    cy: float
    wall: np.ndarray  # colour the paint mirrors above the horizon
    floor: np.ndarray  # and below it
    shadow_rgb: tuple[int, int, int]
    shadow_strength: float
    background: Image.Image


class _Camera:
    """A pinhole camera orbiting the car (the car turns, the studio does not)."""

    def __init__(self, studio: _Studio, theta: float, offset: np.ndarray) -> None:
        d = studio.distance
        self.pos = np.array([d * math.cos(theta), d * math.sin(theta), studio.cam_height]) - offset
        target = np.array([0.0, 0.0, studio.target_z]) - offset
        fwd = target - self.pos
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, fwd)
        self.rot = np.stack([right, up, fwd])
        self.focal, self.cx, self.cy = studio.focal, studio.cx, studio.cy
        # Key light: from behind the camera, above, a little to the right.
        flat = np.array([fwd[0], fwd[1], 0.0])
        flat /= np.linalg.norm(flat)
        light = -0.55 * flat + 0.8 * np.array([0.0, 0.0, 1.0]) + 0.25 * right
        self.light = light / np.linalg.norm(light)

    def project(self, pts: np.ndarray) -> np.ndarray:
        """Car coordinates (n, 3) to pixel coordinates (n, 2)."""
        q = (np.asarray(pts, dtype=float) - self.pos) @ self.rot.T
        return np.column_stack([self.cx + self.focal * q[:, 0] / q[:, 2], self.cy - self.focal * q[:, 1] / q[:, 2]])

    def sees(self, face: _Face) -> bool:
        """Back-face culling: the face's outside looks towards the camera."""
        return float(np.dot(face.normal, self.pos - face.point)) > 0


def _make_studio(rng: np.random.Generator, width: int, height: int, car_length: float, belt: float,
                 noise: Image.Image) -> _Studio:
    """Camera placement, lighting and the backdrop image (built once per car).

    The backdrop is a wall with a vertical gradient meeting a darker floor at
    the projected wall/floor line (a soft cyclorama curve), with a slight
    colour cast, a vignette and sensor noise. All views of a car share it, as
    the studio's camera and lights stay put while the turntable turns.
    """
    distance = _u(rng, (5.3, 5.8))
    # The photographer half compensates for the car's size (as framing would),
    # so small and long cars both fill roughly 40% (front) to 70% (side).
    focal = width * _u(rng, (0.71, 0.755)) * math.sqrt(4.6 / car_length)
    # Above the body top (the painter's order relies on it), lowish like Carvana's.
    cam_height = max(_u(rng, (1.15, 1.4)), belt + 0.2)
    target_z = _u(rng, (0.62, 0.74))
    cx = width * (0.5 + _u(rng, (-0.03, 0.03)))
    cy = height * (0.56 + _u(rng, (-0.025, 0.025)))
    wall_dist = _u(rng, (5.0, 8.0))

    # Row of the wall/floor line: project a point on it (straight behind the car).
    pitch = math.atan2(cam_height - target_z, distance)
    depth, drop = distance + wall_dist, cam_height
    angle_below = math.atan2(drop, depth) - pitch
    horizon = cy + focal * math.tan(angle_below)

    wall_top, wall_low = _u(rng, (222, 234)), _u(rng, (238, 248))
    floor_hi, floor_lo = _u(rng, (214, 226)), _u(rng, (192, 208))
    rows = np.arange(height, dtype=np.float32)
    t_wall = np.clip(rows / max(horizon, 1.0), 0, 1) ** 1.5
    wall = wall_top + (wall_low - wall_top) * t_wall
    t_floor = np.clip((rows - horizon) / max(height - horizon, 1.0), 0, 1) ** 0.8
    floor = floor_hi + (floor_lo - floor_hi) * t_floor
    band = _u(rng, (0.015, 0.03)) * height
    blend = np.clip((rows - horizon + band) / (2 * band), 0, 1)
    blend = blend * blend * (3 - 2 * blend)
    level = wall * (1 - blend) + floor * blend
    cast = _u(rng, (-0.015, 0.015))
    tint = np.array([1 + cast, 1 + 0.3 * cast, 1 - 0.8 * cast], dtype=np.float32)
    cols = (np.arange(width, dtype=np.float32) - cx) / (width / 2)
    vignette = 1 - _u(rng, (0.03, 0.07)) * cols * cols
    # Rows x columns: a 1-pixel-wide gradient and a 1-pixel-high vignette,
    # stretched and multiplied by Pillow (a few ms, against ~100 for numpy).
    column = np.clip(level[:, None] * tint[None, :] + 0.5, 0, 255).astype(np.uint8)
    rows_img = Image.fromarray(np.ascontiguousarray(column[:, None, :]), "RGB")
    rows_img = rows_img.resize((width, height), Image.NEAREST)
    vig = np.clip(vignette * 255 + 0.5, 0, 255).astype(np.uint8)[None, :]
    vig_img = Image.fromarray(vig, "L").resize((width, height), Image.NEAREST).convert("RGB")
    background = ImageChops.multiply(rows_img, vig_img)
    # The backdrop's sensor noise is drawn once per car; each view adds fresh
    # noise to the car pixels only (see _render_view), which is what it costs
    # to keep the render fast, and the backdrop is static in a studio anyway.
    ox, oy = (int(v) for v in rng.integers(0, _NOISE_PAD + 1, 2))
    background = ImageChops.add(background, noise.crop((ox, oy, ox + width, oy + height)), 1.0, -_NOISE_BIAS)

    shadow = np.array([floor_lo, floor_lo, floor_lo]) * _u(rng, (0.25, 0.4))
    return _Studio(
        width=width, height=height, focal=focal, distance=distance, cam_height=cam_height,
        target_z=target_z, cx=cx, cy=cy,
        wall=np.array([wall_low] * 3) * tint, floor=np.array([floor_lo] * 3) * tint * 0.72,
        shadow_rgb=tuple(int(v) for v in shadow), shadow_strength=_u(rng, (0.55, 0.75)),
        background=background,
    )


def _colour(mat: _Material, normal: np.ndarray, cam: _Camera, studio: _Studio) -> np.ndarray:
    """Lambert shading under the key light plus a mirror of the wall or floor."""
    shade = 0.66 + 0.38 * max(0.0, float(np.dot(normal, cam.light)))
    env = studio.floor if mat.env == "floor" or normal[2] < -0.3 else studio.wall
    return np.asarray(mat.rgb) * shade * (1 - mat.refl) + env * mat.refl


def _rgb(c: np.ndarray) -> tuple[int, int, int]:
    """Float colour to a Pillow ink (plain Python: called for every polygon)."""
    r, g, b = (min(255, max(0, round(float(v)))) for v in c)
    return r, g, b


def _view_decals(car: _Car, cam: _Camera, theta: float, rng: np.random.Generator) -> dict[str, list[_Decal]]:
    """Specular highlights for one view: they slide as the car turns under fixed lights.

    Near-white streaks on shoulders, hood, roof and glass are exactly what
    fools a "not background-coloured" rule, so every view gets some.
    """
    white = (253.0, 253.0, 253.0)
    soft = (235.0, 236.0, 238.0)
    out: dict[str, list[_Decal]] = {}
    length, cap = car.length, car.cap_profile
    for sign, key in ((-1.0, "cap-"), (1.0, "cap+")):
        y = sign * car.width / 2
        xc = -sign * 0.3 * length * math.cos(theta + car.phase) + rng.uniform(-0.1, 0.1)
        half = length * rng.uniform(0.18, 0.3)
        z0, h = car.streak_z, car.streak_h
        slant = rng.uniform(-0.03, 0.03)
        decals = []
        for grow, alpha, tint in ((3.0, 0.4, soft), (1.0, 0.93, white)):
            band = np.array([
                [xc - half * (1.1 if grow > 1 else 1), z0 - h * grow / 2 - slant],
                [xc + half * (1.1 if grow > 1 else 1), z0 - h * grow / 2 + slant],
                [xc + half * 0.95, z0 + h * grow / 2 + slant],
                [xc - half * 0.95, z0 + h * grow / 2 - slant],
            ])
            clipped = _clip_convex(band, cap)
            if len(clipped) >= 3:
                decals.append(_Decal(_on_side(clipped, y), tint=tint, alpha=alpha))
        xv = 0.35 * length * math.sin(2 * theta + car.phase) + rng.uniform(-0.2, 0.2)
        wv = rng.uniform(0.1, 0.2)
        vert = np.array([[xv - wv, car.clearance], [xv + wv, car.clearance],
                         [xv + wv + 0.1, car.belt], [xv - wv + 0.1, car.belt]])
        clipped = _clip_convex(vert, cap)
        if len(clipped) >= 3:
            decals.append(_Decal(_on_side(clipped, y), tint=soft, alpha=0.16))
        out[key] = decals

    cs = 0.5 + 0.3 * math.sin(theta + car.phase)
    out["hood"] = [
        _Decal(_quad_points(car.hood_quad, _ellipse_st(cs, 0.5, 0.1, 0.45)), tint=soft, alpha=0.25),
        _Decal(_quad_points(car.hood_quad, _ellipse_st(cs, 0.5, 0.04, 0.32)), tint=white, alpha=0.9),
    ]
    tr = 0.5 + 0.25 * math.cos(theta + car.phase)
    out["roof"] = [
        _Decal(_quad_points(car.roof_quad, _rect_st(0.04, 0.96, tr - 0.16, tr + 0.16)), tint=soft, alpha=0.35),
        _Decal(_quad_points(car.roof_quad, _rect_st(0.08, 0.92, tr - 0.05, tr + 0.05)), tint=white, alpha=0.88),
    ]
    for key, quad in (("windshield", car.windshield_quad), ("rear", car.rear_quad)):
        o = float(rng.uniform(0.05, 0.45))
        out[key] = [_Decal(_quad_points(quad, [(o, 0.05), (o + 0.14, 0.05), (o + 0.42, 0.92), (o + 0.28, 0.92)]), tint=soft, alpha=0.45)]
    return out


def _draw_part(part: _Part, cam: _Camera, studio: _Studio, draw: ImageDraw.ImageDraw,
               mdraw: ImageDraw.ImageDraw, extra: dict[str, list[_Decal]]) -> None:
    """Paint a convex part's camera-facing faces (and decals) into photo and mask."""
    pix = cam.project(part.verts)
    for face in part.faces:
        if not cam.sees(face):
            continue
        poly = pix[face.idx].ravel().tolist()
        colour = _colour(face.material, face.normal, cam, studio)
        draw.polygon(poly, fill=_rgb(colour))
        mdraw.polygon(poly, fill=1)
        for decal in face.decals + extra.get(face.key, []):
            if len(decal.pts) < 3:
                continue
            base = colour if decal.material is None else _colour(decal.material, face.normal, cam, studio)
            ink = base * (1 - decal.alpha) + np.asarray(decal.tint) * decal.alpha
            draw.polygon(cam.project(decal.pts).ravel().tolist(), fill=_rgb(ink))


def _draw_shadow(img: Image.Image, car: _Car, cam: _Camera, studio: _Studio) -> None:
    """Darken the floor under the car with a soft shadow (blurred at low resolution)."""
    w, h = studio.width, studio.height
    k = max(1, round(w / _SHADOW_TARGET_WIDTH))
    sw, sh = -(-w // k), -(-h // k)
    layer = Image.new("L", (sw, sh), 0)
    d = ImageDraw.Draw(layer)
    ang = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    a, b = car.length / 2 + 0.35, car.width / 2 + 0.3
    ellipse = np.column_stack([a * np.cos(ang), b * np.sin(ang), np.zeros_like(ang)])
    d.polygon((cam.project(ellipse) / k).ravel().tolist(), fill=int(150 * studio.shadow_strength))
    foot = np.array([[-car.length / 2, -car.width / 2, 0], [car.length / 2, -car.width / 2, 0],
                     [car.length / 2, car.width / 2, 0], [-car.length / 2, car.width / 2, 0]])
    d.polygon((cam.project(foot) / k).ravel().tolist(), fill=int(215 * studio.shadow_strength))
    for wheel in car.wheels:
        xw = float(wheel.verts[:, 0].mean())
        yw = float(wheel.verts[:, 1].mean())
        contact = np.column_stack([xw + 0.3 * np.cos(ang), yw + 0.16 * np.sin(ang), np.zeros_like(ang)])
        d.polygon((cam.project(contact) / k).ravel().tolist(), fill=int(255 * studio.shadow_strength))
    layer = layer.filter(ImageFilter.GaussianBlur(max(1.0, 0.018 * sw)))
    box = layer.getbbox()
    if box is None:
        return
    full = (box[0] * k, box[1] * k, min(box[2] * k, w), min(box[3] * k, h))
    size = (full[2] - full[0], full[3] - full[1])
    alpha = layer.resize(size, Image.BILINEAR, box=tuple(v / k for v in full))
    region = img.crop(full)
    dark = Image.new("RGB", region.size, studio.shadow_rgb)
    img.paste(Image.composite(dark, region, alpha), full[:2])


def _render_view(car: _Car, studio: _Studio, theta: float, rng: np.random.Generator,
                 noise: Image.Image) -> tuple[Image.Image, Image.Image]:
    """One photo and its mask ("P", indices 0/1) of ``car`` turned by ``theta``.

    Painter's order: wheels and mirror on the far side, body, near wheels,
    cabin, near mirror. Each part is convex, so culling orders its own faces;
    the camera is always above the body top, so the cabin never hides behind
    the body. The photo's car pixels are composited through a 1-px softened
    copy of the mask, which antialiases the outline and guarantees that no
    car paint leaks outside the mask.
    """
    w, h = studio.width, studio.height
    offset = np.array([rng.uniform(-0.06, 0.06), rng.uniform(-0.06, 0.06), 0.0])
    cam = _Camera(studio, theta, offset)
    photo = studio.background.copy()
    _draw_shadow(photo, car, cam, studio)
    mask = Image.new("P", (w, h), 0)
    mask.putpalette(_MASK_PALETTE)
    draw, mdraw = ImageDraw.Draw(photo), ImageDraw.Draw(mask)
    extra = _view_decals(car, cam, theta, rng)

    cap_side = {"cap-": -1.0, "cap+": 1.0}
    near_sides = {s for key, s in cap_side.items() for f in car.body.faces if f.key == key and cam.sees(f)}
    near = [wh for wh in car.wheels if np.sign(wh.verts[0, 1]) in near_sides]
    far = sorted((wh for wh in car.wheels if wh not in near),
                 key=lambda p: -float(np.linalg.norm(p.verts.mean(axis=0) - cam.pos)))
    front = np.array([0.6, 0.0, 0.0])
    near_mirrors, far_mirrors = [], []
    for mirror in car.mirrors:
        centre = mirror.verts.mean(axis=0)
        out = front + np.array([0.0, np.sign(centre[1]), 0.0])
        (near_mirrors if np.dot(out, cam.pos - centre) > 0 else far_mirrors).append(mirror)
    order = far + far_mirrors + [car.body] + near + [car.cabin] + near_mirrors

    # Everything drawn lies inside the projected vertices' box: keep the
    # backdrop there, paint the car straight onto the photo, then blend back.
    pix = np.vstack([cam.project(part.verts) for part in order])
    pad = 3
    box = (
        max(int(pix[:, 0].min()) - pad, 0), max(int(pix[:, 1].min()) - pad, 0),
        min(int(pix[:, 0].max()) + pad + 1, w), min(int(pix[:, 1].max()) + pad + 1, h),
    )
    if box[0] >= box[2] or box[1] >= box[3]:  # the car is entirely out of frame
        return photo, mask
    backdrop = photo.crop(box)
    for part in order:
        _draw_part(part, cam, studio, draw, mdraw, extra)
    ox, oy = (int(v) for v in rng.integers(0, _NOISE_PAD + 1, 2))
    bw, bh = box[2] - box[0], box[3] - box[1]
    car_px = ImageChops.add(photo.crop(box), noise.crop((ox, oy, ox + bw, oy + bh)), 1.0, -_NOISE_BIAS)
    soft = Image.fromarray(np.asarray(mask.crop(box)) * np.uint8(255), "L").filter(_EDGE_SOFTEN)
    photo.paste(Image.composite(car_px, backdrop, soft), box[:2])
    return photo, mask


def _noise_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Sensor-like noise, biased by +_NOISE_BIAS; drawn once per dataset.

    Triangular (sum of two uniform 0..4 integers: sigma 2 per channel) rather
    than Gaussian: it is drawn straight as ``uint8``, ten times faster.
    """
    shape = (height + _NOISE_PAD, width + _NOISE_PAD, 3)
    n = rng.integers(0, 5, shape, dtype=np.uint8) + rng.integers(0, 5, shape, dtype=np.uint8)
    return Image.fromarray(n, "RGB")


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _car_ids(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct 12-hex-digit ids, like Kaggle's ``00087a6bd4dc``."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        car = f"{int(rng.integers(0, 2**48)):012x}"
        if car not in seen:
            seen.add(car)
            ids.append(car)
    return ids


def _save_mask(mask: Image.Image, path: Path) -> None:
    """Write the mask as Kaggle does: a palette GIF with indices 0/1."""
    with atomic_path(path) as tmp:
        mask.save(tmp, format="GIF")


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """CSV text with ``\\n`` line ends (stable bytes on every platform)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def generate(
    out_dir: str | os.PathLike[str],
    n_train_cars: int = 8,
    n_test_cars: int = 4,
    views: int = 16,
    width: int = 1918,
    height: int = 1280,
    seed: int = 0,
    jpeg_quality: int = 90,
) -> None:
    """Write a synthetic Carvana dataset in Kaggle's layout under ``out_dir``.

    ``n_train_cars`` cars get photos in ``train/``, masks in ``train_masks/``
    and rows in ``train_masks.csv``; ``n_test_cars`` other cars get photos in
    ``test/`` and rows in ``sample_submission.csv``; all of them get a row in
    ``metadata.csv``. Each car is photographed from ``views`` angles (view
    ``k`` at ``2*pi*(k-1)/views``, 01 = front) as ``width`` x ``height`` JPEGs
    of quality ``jpeg_quality``. The same arguments always give byte-identical
    files (``seed`` may be any int; negative ones are taken modulo 2**63);
    existing files of the same names are replaced.
    """
    if n_train_cars < 0 or n_test_cars < 0:
        raise ValueError("car counts must be >= 0")
    if not 1 <= views <= 99:
        raise ValueError(f"views must be in 1..99 (two-digit names), got {views}")
    if width < 16 or height < 16:
        raise ValueError(f"image size {width}x{height} is too small (min 16x16)")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
    out = Path(out_dir)
    base_seed = int(seed) % 2**63  # SeedSequence takes non-negative entropy only
    n_cars = n_train_cars + n_test_cars

    # Independent streams per car and per view (SeedSequence.spawn), so no
    # two cars share correlated draws.
    master_seq, cars_seq = np.random.SeedSequence(base_seed).spawn(2)
    master = np.random.default_rng(master_seq)
    ids = _car_ids(master, n_cars)
    # At least ~30% white/silver cars (the hard cases), spread at random; the
    # palettes are dealt in shuffled order so colours vary from car to car.
    n_pale = math.ceil(0.3 * n_cars)
    pale = np.zeros(n_cars, dtype=bool)
    pale[master.permutation(n_cars)[:n_pale]] = True
    pale_deck = master.permutation(len(_PALE_PAINTS))
    other_deck = master.permutation(len(_OTHER_PAINTS))
    paints: list[_Colour] = []
    for i in range(n_cars):
        if pale[i]:
            paints.append(_PALE_PAINTS[pale_deck[int(pale[:i].sum()) % len(_PALE_PAINTS)]])
        else:
            paints.append(_OTHER_PAINTS[other_deck[int((~pale[:i]).sum()) % len(_OTHER_PAINTS)]])
    noise = _noise_image(master, width, height)
    car_seqs = cars_seq.spawn(n_cars)

    mask_rows: list[tuple[str, str]] = []
    test_rows: list[tuple[str, str]] = []
    meta_rows: list[list[str]] = []
    for i, car_id in enumerate(ids):
        is_train = i < n_train_cars
        view_seqs = car_seqs[i].spawn(views + 1)
        car_rng = np.random.default_rng(view_seqs[0])
        car = _make_car(car_rng, car_id, paints[i])
        studio = _make_studio(car_rng, width, height, car.length, car.belt, noise)
        folder = out / ("train" if is_train else "test")
        for k in range(1, views + 1):
            view_rng = np.random.default_rng(view_seqs[k])
            theta = 2 * math.pi * (k - 1) / views
            photo, mask = _render_view(car, studio, theta, view_rng, noise)
            name = f"{car_id}_{k:02d}"
            with atomic_path(folder / f"{name}.jpg") as tmp:
                photo.save(tmp, format="JPEG", quality=jpeg_quality)
            if is_train:
                _save_mask(mask, out / "train_masks" / f"{name}_mask.gif")
                mask_rows.append((f"{name}.jpg", rle.encode(np.asarray(mask))))
            else:
                test_rows.append((f"{name}.jpg", "1 1"))
        meta = car.metadata
        meta_rows.append([meta[c] for c in ("id", "year", "make", "model", "trim1", "trim2")])

    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "test").mkdir(parents=True, exist_ok=True)
    (out / "train_masks").mkdir(parents=True, exist_ok=True)
    write_text(_csv_text(("id", "year", "make", "model", "trim1", "trim2"), sorted(meta_rows)), out / "metadata.csv")
    write_text(_csv_text(("img", "rle_mask"), sorted(test_rows)), out / "sample_submission.csv")
    write_text(_csv_text(("img", "rle_mask"), sorted(mask_rows)), out / "train_masks.csv")
