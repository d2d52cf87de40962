"""Low-poly building blocks of the demo cars: materials, convex parts, and the 2-D geometry that shapes them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


Colour = tuple[float, float, float]

@dataclass(frozen=True)
class Material:
    """A paint: base colour, how much it mirrors the studio, which part it mirrors."""

    rgb: Colour
    refl: float = 0.1
    env: str = "auto"  # "auto": wall for faces looking up or sideways, "floor": floor

@dataclass(frozen=True)
class Decal:
    """A flat polygon painted on a face (lights, windows, seams, highlights).

    Its colour is ``material`` shaded like the face (or the face's own colour
    when None), then mixed ``alpha`` of the way towards ``tint``.
    """

    pts: np.ndarray  # (n, 3) car coordinates, on the face's plane
    material: Material | None = None
    tint: Colour = (0.0, 0.0, 0.0)
    alpha: float = 0.0

@dataclass(eq=False)
class Face:
    """A planar convex face of a part, with its outward normal and decals."""

    idx: np.ndarray
    material: Material
    normal: np.ndarray = field(default_factory=lambda: np.zeros(3))
    point: np.ndarray = field(default_factory=lambda: np.zeros(3))
    key: str = ""
    decals: list[Decal] = field(default_factory=list)

@dataclass(eq=False)
class Part:
    """A convex polyhedron: vertices, faces; drawn by back-face culling alone."""

    verts: np.ndarray
    faces: list[Face]

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

def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A uniform draw in ``bounds`` (shorthand that keeps the proportions readable)."""
    return float(rng.uniform(bounds[0], bounds[1]))

def quad_points(quad: np.ndarray, st: Sequence[tuple[float, float]]) -> np.ndarray:
    """Map (s, t) in the unit square onto a quad A(0,0) B(1,0) C(1,1) D(0,1).

    Decals are laid out in these face coordinates, so they follow each car's
    proportions without any per-style arithmetic.
    """
    a, b, c, d = quad
    st_arr = np.asarray(st, dtype=float)
    s, t = st_arr[:, :1], st_arr[:, 1:2]
    return (1 - t) * ((1 - s) * a + s * b) + t * ((1 - s) * d + s * c)

def ellipse_st(cs: float, ct: float, rs: float, rt: float, n: int = 16) -> list[tuple[float, float]]:
    """An ellipse in face coordinates, clamped to the face."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [
        (min(max(cs + rs * math.cos(a), 0.0), 1.0), min(max(ct + rt * math.sin(a), 0.0), 1.0))
        for a in ang
    ]

def rect_st(s0: float, s1: float, t0: float, t1: float) -> list[tuple[float, float]]:
    """A rectangle in face coordinates."""
    return [(s0, t0), (s1, t0), (s1, t1), (s0, t1)]

def clip_halfplane(poly: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
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

def clip_convex(poly: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Clip a 2-D polygon to a convex counter-clockwise polygon ``clip``."""
    out = np.asarray(poly, dtype=float)
    n = len(clip)
    for i in range(n):
        if len(out) == 0:
            break
        p, q = clip[i], clip[(i + 1) % n]
        # Inside of a CCW edge p->q is to its left: cross(q-p, x-p) >= 0.
        ex, ey = q[0] - p[0], q[1] - p[1]
        out = clip_halfplane(out, ey, -ex, ey * p[0] - ex * p[1])
    return out

def is_convex_ccw(poly: np.ndarray) -> bool:
    """Whether a 2-D polygon turns left at every vertex (convex, counter-clockwise)."""
    d = np.roll(poly, -1, axis=0) - poly
    cross = d[:, 0] * np.roll(d[:, 1], -1) - d[:, 1] * np.roll(d[:, 0], -1)
    return bool(np.all(cross > 0))

def on_side(pts_xz: np.ndarray, y: float) -> np.ndarray:
    """Lift x-z points onto the plane ``y`` (the body's outer side)."""
    return np.column_stack([pts_xz[:, 0], np.full(len(pts_xz), y), pts_xz[:, 1]])

def disc_xz(cx: float, cz: float, r: float, n: int = 20) -> np.ndarray:
    """A circle as an n-gon in the x-z plane."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([cx + r * np.cos(ang), cz + r * np.sin(ang)])

def make_box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, mat: Material) -> Part:
    """An axis-aligned box part (mirrors)."""
    v = np.array([[x, y, z] for z in (z0, z1) for y in (y0, y1) for x in (x0, x1)], dtype=float)
    quads = ((0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5))
    return Part(v, [Face(np.array(q), mat) for q in quads])

def make_wheel(xc: float, y_out: float, y_in: float, r: float, spokes: int, rim: Material,
           tyre: Material, n: int = 20) -> Part:
    """A wheel: a cylinder across y, tyre-coloured, with a spoked rim on its outer cap."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.column_stack([xc + r * np.cos(ang), r + r * np.sin(ang)])
    verts = np.vstack([on_side(ring, y_out), on_side(ring, y_in)])
    faces = [Face(np.arange(n), tyre, key="outer"), Face(np.arange(n, 2 * n), tyre)]
    faces += [Face(np.array([i, (i + 1) % n, n + (i + 1) % n, n + i]), tyre) for i in range(n)]
    dark = Material((38.0, 38.0, 40.0), 0.05)
    decals = [
        Decal(on_side(disc_xz(xc, r, 0.68 * r), y_out), rim),
        Decal(on_side(disc_xz(xc, r, 0.58 * r), y_out), dark),
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
        decals.append(Decal(on_side(pts, y_out), rim))
    decals.append(Decal(on_side(disc_xz(xc, r, 0.17 * r, 12), y_out), rim))
    faces[0].decals = decals
    return Part(verts, faces)

def round_profile(profile: np.ndarray, cuts: Sequence[float]) -> np.ndarray:
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
