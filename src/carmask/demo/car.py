"""The demo's cars: body styles, paints, and a low-poly 3-D car (body, cabin, wheels, mirrors) drawn from them.

Each car is lofted from a side profile whose proportions are drawn from
its style, so silhouettes differ from car to car the way real ones do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carmask.demo.shapes import (
    Colour,
    Decal,
    Face,
    Material,
    Part,
    clip_convex,
    clip_halfplane,
    disc_xz,
    make_box,
    make_wheel,
    on_side,
    quad_points,
    rect_st,
    round_profile,
    uniform,
)


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
PALE_PAINTS: tuple[Colour, ...] = (
    (238.0, 238.0, 236.0), (242.0, 241.0, 236.0), (232.0, 230.0, 222.0),
    (203.0, 205.0, 209.0), (214.0, 215.0, 217.0),
)

OTHER_PAINTS: tuple[Colour, ...] = (
    (22.0, 23.0, 25.0), (30.0, 30.0, 34.0), (72.0, 74.0, 78.0), (118.0, 120.0, 124.0),
    (150.0, 22.0, 26.0), (120.0, 18.0, 30.0), (24.0, 38.0, 88.0), (40.0, 82.0, 160.0),
    (188.0, 174.0, 142.0), (38.0, 72.0, 50.0), (86.0, 58.0, 40.0), (196.0, 92.0, 24.0),
)

@dataclass(eq=False)
class Car:
    """One car: its 3-D parts, the numbers per-view decals need, and its metadata."""

    car_id: str
    style: _Style
    paint: Material
    length: float
    width: float
    belt: float
    clearance: float
    wheel_r: float
    body: Part
    cabin: Part
    wheels: list[Part]
    mirrors: list[Part]
    cap_profile: np.ndarray  # (m, 2) x-z outline of the outer body side
    hood_quad: np.ndarray  # (4, 3) A, B, C, D for quad_points
    roof_quad: np.ndarray
    windshield_quad: np.ndarray
    rear_quad: np.ndarray
    streak_z: float
    streak_h: float
    phase: float
    metadata: dict[str, str]

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

    paint: Material
    paint_floor: Material
    glass: Material
    tyre: Material
    rim: Material
    dark: Material

_BLACK: Colour = (0.0, 0.0, 0.0)

_WHITE: Colour = (252.0, 252.0, 252.0)

def _draw_frame(rng: np.random.Generator) -> _Frame:
    """A body style and the proportions drawn from its ranges."""
    style = _STYLES[int(rng.integers(len(_STYLES)))]
    length, width = uniform(rng, style.length), uniform(rng, style.width)
    belt, roof = uniform(rng, style.belt), uniform(rng, style.roof)
    c, r = uniform(rng, style.clearance), uniform(rng, style.wheel_r)
    return _Frame(style, length, width, belt, roof, c, r, hood_drop=uniform(rng, style.hood_drop))

def _draw_paints(rng: np.random.Generator, paint_rgb: Colour) -> _Paints:
    """The car's paint (varied a little), glass, tyres, rims and trim."""
    base = np.array(paint_rgb) + rng.uniform(-4, 4, 3)
    paint = Material(tuple(np.clip(base, 0, 255)), uniform(rng, (0.07, 0.15)))
    tinted = rng.random() < 0.5
    glass = Material((18.0, 20.0, 24.0) if tinted else (26.0, 31.0, 37.0), uniform(rng, (0.14, 0.26)))
    rim = Material((176.0, 179.0, 184.0) if rng.random() < 0.7 else (60.0, 61.0, 66.0), 0.2)
    return _Paints(
        paint=paint,
        paint_floor=Material(paint.rgb, min(paint.refl + 0.12, 0.4), "floor"),
        glass=glass,
        tyre=Material((27.0, 27.0, 29.0), 0.03),
        rim=rim,
        dark=Material((26.0, 26.0, 28.0), 0.08),
    )

def _build_body(rng: np.random.Generator, f: _Frame, mats: _Paints) -> tuple[Part, dict[str, np.ndarray], np.ndarray, _Stations]:
    """The lower body: a rounded side profile swept across the car.

    Returns the part, its named side quads (for decals), the outer side's
    x-z outline and where the cabin and the wheels go.
    """
    style, length, belt, c = f.style, f.length, f.belt, f.clearance
    xf, xr = length / 2, -length / 2
    # Side profile of the lower body, counter-clockwise in x-z.
    x_cf = xf - uniform(rng, style.hood) * length
    x_cr = xr + uniform(rng, style.deck) * length
    deck_drop = uniform(rng, (0.02, 0.05))
    st = _Stations(x_cf, x_cr, deck_drop, xf - uniform(rng, style.overhang_f) * length, xr + uniform(rng, style.overhang_r) * length)
    # The bumpers' undersides rise from the sills (approach/departure angles),
    # which is what lets the tyres show under them at front and back views.
    # With the bumper's bottom corner at (beta * overhang, alpha * nose), the
    # profile turns left there iff alpha + beta < 1; the ranges below keep
    # alpha + beta <= 0.9, so every car's profile is convex (tested).
    nose = (belt - c) * uniform(rng, (0.30, 0.42))
    tail = (belt - c) * uniform(rng, (0.35, 0.50))
    corners = np.array([
        [xf - (xf - st.x_wf) * uniform(rng, (0.15, 0.35)), c + nose * uniform(rng, (0.3, 0.55))],
        [xf, c + nose],
        [xf - uniform(rng, (0.04, 0.10)), belt - f.hood_drop],
        [st.x_cf, belt],
        [xr + uniform(rng, (0.04, 0.10)), belt - st.deck_drop],
        [xr, c + tail],
        [xr + (st.x_wr - xr) * uniform(rng, (0.15, 0.35)), c + tail * uniform(rng, (0.3, 0.55))],
        [st.x_wr, c],
        [st.x_wf, c],
    ])
    edge_names = ["lower_front", "fascia", "hood", "top", "rear_fascia", "rear_lower",
                  "rear_under", "under", "front_under"]
    cuts = [0.06, 0.12, uniform(rng, (0.08, 0.16)), 0.1, uniform(rng, (0.08, 0.14)), 0.1, 0.06, 0.04, 0.04]
    profile = round_profile(corners, cuts)
    m = len(profile)
    # Odd edge 2j+1 of the rounded profile is original edge j; even edges are the cut corners.
    names = [edge_names[(e - 1) // 2] if e % 2 else "corner" for e in range(m)]
    zc = (c + belt) / 2
    shrink = uniform(rng, (0.955, 0.97))
    chamfer = uniform(rng, (0.09, 0.15))
    centre = np.array([0.0, zc])
    # Four slices across the car: the outer two shrunk (homothety about the
    # profile's middle keeps every quad planar), which rounds the body in plan.
    w = f.width
    slices = [(-w / 2, shrink), (-w / 2 + chamfer, 1.0), (w / 2 - chamfer, 1.0), (w / 2, shrink)]
    verts = np.vstack([on_side(centre + s * (profile - centre), y) for y, s in slices])
    cap = centre + shrink * (profile - centre)

    faces = [Face(np.arange(m), mats.paint, key="cap-"), Face(np.arange(3 * m, 4 * m), mats.paint, key="cap+")]
    quads: dict[str, np.ndarray] = {}
    for i in range(3):
        for j in range(m):
            idx = np.array([i * m + j, (i + 1) * m + j, (i + 1) * m + (j + 1) % m, i * m + (j + 1) % m])
            key = names[j] if i == 1 else "chamfer"
            mat = mats.dark if names[j].endswith("under") else mats.paint
            faces.append(Face(idx, mat, key=key))
            if i == 1 and key != "corner":
                quads[key] = verts[idx]
    return Part(verts, faces), quads, cap, st

def _add_front_and_rear(by_key: dict[str, Face], quads: dict[str, np.ndarray], dark: Material) -> None:
    """Lights, grille, plates, intake and diffuser, in face coordinates (s across, t along the edge)."""
    head = Material((206.0, 211.0, 216.0), 0.35)
    tail_light = Material((152.0, 18.0, 24.0), 0.2)
    plate = Material((232.0, 232.0, 226.0), 0.1)
    chrome = Material((178.0, 180.0, 186.0), 0.3)
    fq = quads["fascia"]
    by_key["fascia"].decals = [
        Decal(quad_points(fq, [(0.03, 0.58), (0.27, 0.52), (0.25, 0.88), (0.03, 0.92)]), head),
        Decal(quad_points(fq, [(0.97, 0.58), (0.73, 0.52), (0.75, 0.88), (0.97, 0.92)]), head),
        Decal(quad_points(fq, [(0.06, 0.72), (0.12, 0.70), (0.12, 0.8), (0.06, 0.82)]), tint=_WHITE, alpha=0.9),
        Decal(quad_points(fq, [(0.94, 0.72), (0.88, 0.70), (0.88, 0.8), (0.94, 0.82)]), tint=_WHITE, alpha=0.9),
        Decal(quad_points(fq, rect_st(0.29, 0.71, 0.30, 0.80)), chrome),
        Decal(quad_points(fq, rect_st(0.31, 0.69, 0.33, 0.77)), dark),
        Decal(quad_points(fq, rect_st(0.41, 0.59, 0.04, 0.26)), plate),
    ]
    by_key["lower_front"].decals = [
        Decal(quad_points(quads["lower_front"], rect_st(0.2, 0.8, 0.25, 0.8)), dark),  # air intake
    ]
    rq = quads["rear_fascia"]
    by_key["rear_fascia"].decals = [
        Decal(quad_points(rq, rect_st(0.02, 0.25, 0.05, 0.36)), tail_light),
        Decal(quad_points(rq, rect_st(0.75, 0.98, 0.05, 0.36)), tail_light),
        Decal(quad_points(rq, rect_st(0.40, 0.60, 0.38, 0.70)), plate),
    ]
    by_key["rear_lower"].decals = [
        Decal(quad_points(quads["rear_lower"], rect_st(0.1, 0.9, 0.3, 0.85)), dark),  # diffuser
    ]

def _build_wheels(rng: np.random.Generator, f: _Frame, st: _Stations, mats: _Paints) -> list[Part]:
    """Four wheels, inset from the body side."""
    tyre_w = uniform(rng, (0.20, 0.26))
    spokes = int(rng.integers(5, 8))
    wheels = []
    for sign in (-1.0, 1.0):
        y_out = sign * (f.width / 2 - 0.025)
        for xw in (st.x_wf, st.x_wr):
            wheels.append(make_wheel(xw, y_out, y_out - sign * tyre_w, f.wheel_r, spokes, mats.rim, mats.tyre))
    return wheels

def _add_body_sides(
    rng: np.random.Generator, by_key: dict[str, Face], f: _Frame, st: _Stations, mats: _Paints, cap: np.ndarray
) -> float:
    """Floor reflection below a "horizon", seams, handles and arches on both sides; returns the B-pillar's x."""
    c, r, belt = f.clearance, f.wheel_r, f.belt
    z_ref = c + (belt - c) * uniform(rng, (0.38, 0.55))
    cap_top = float(cap[:, 1].max())
    x_b = st.x_cf + (st.x_cr - st.x_cf) * uniform(rng, (0.42, 0.5))
    seams = (st.x_cf - 0.06, x_b, st.x_wr + r + 0.08)  # front door, B-pillar, rear door
    for sign, key in ((-1.0, "cap-"), (1.0, "cap+")):
        y = sign * f.width / 2
        decals = [
            Decal(on_side(clip_halfplane(cap, 0, 1, z_ref), y), mats.paint_floor),
            Decal(on_side(clip_halfplane(cap, 0, -1, -(cap_top - 0.07)), y), tint=_WHITE, alpha=0.12),
            Decal(on_side(clip_halfplane(cap, 0, 1, c + 0.07), y), tint=_BLACK, alpha=0.45),
        ]
        for xs in seams:
            seam = np.array([[xs - 0.006, c + 0.07], [xs + 0.006, c + 0.07],
                             [xs + 0.006, belt - 0.04], [xs - 0.006, belt - 0.04]])
            decals.append(Decal(on_side(clip_convex(seam, cap), y), tint=_BLACK, alpha=0.5))
        for xh in (x_b + 0.12, st.x_cf - 0.2):  # door handles
            handle = np.array([[xh - 0.13, belt - 0.15], [xh, belt - 0.15],
                               [xh, belt - 0.12], [xh - 0.13, belt - 0.12]])
            decals.append(Decal(on_side(handle, y), tint=_BLACK, alpha=0.35))
        for xw in (st.x_wf, st.x_wr):
            arch = clip_convex(disc_xz(xw, r, r + 0.05, 24), cap)
            decals.append(Decal(on_side(arch, y), Material((16.0, 16.0, 18.0), 0.02)))
        by_key[key].decals = decals
    return x_b

def _build_cabin(rng: np.random.Generator, f: _Frame, st: _Stations, mats: _Paints, x_b: float) -> tuple[Part, np.ndarray, float]:
    """The greenhouse: a frustum on the body, narrower at the roof, with its windows.

    Returns the part, its vertices and the half-width at its base.
    """
    style, length, roof = f.style, f.length, f.roof
    zb = f.belt - st.deck_drop - 0.01
    wb = f.width / 2 - uniform(rng, (0.05, 0.09))
    wt = wb - uniform(rng, (0.12, 0.18))
    x_rf = st.x_cf - uniform(rng, style.windshield)
    x_rr = st.x_cr + uniform(rng, style.rear_glass)
    if x_rf - x_rr < 0.25 * length:  # keep a roof of plausible length
        mid, half = (x_rf + x_rr) / 2, 0.125 * length
        x_rf, x_rr = min(mid + half, st.x_cf - 0.3), max(mid - half, st.x_cr + 0.1)
    cv = np.array([
        [st.x_cf, -wb, zb], [st.x_cf, wb, zb], [st.x_cr, wb, zb], [st.x_cr, -wb, zb],
        [x_rf, -wt, roof], [x_rf, wt, roof], [x_rr, wt, roof], [x_rr, -wt, roof],
    ])
    paint, glass = mats.paint, mats.glass
    cabin = Part(cv, [
        Face(np.array([0, 1, 2, 3]), paint),
        Face(np.array([4, 5, 6, 7]), paint, key="roof"),
        Face(np.array([0, 1, 5, 4]), paint, key="windshield"),
        Face(np.array([2, 3, 7, 6]), paint, key="rear"),
        Face(np.array([1, 2, 6, 5]), paint, key="side+"),
        Face(np.array([3, 0, 4, 7]), paint, key="side-"),
    ])
    cab = {face.key: face for face in cabin.faces}
    cab["windshield"].decals = [Decal(quad_points(cv[[0, 1, 5, 4]], rect_st(0.035, 0.965, 0.03, 0.95)), glass)]
    rear_t0 = 0.06 if style.name == "sedan" else 0.2
    cab["rear"].decals = [Decal(quad_points(cv[[3, 2, 6, 7]], rect_st(0.06, 0.94, rear_t0, 0.93)), glass)]
    u_b = (st.x_cf - x_b) / (st.x_cf - st.x_cr)
    splits = [0.04, u_b - 0.03, u_b + 0.03, 0.96]
    if style.windows == 3:
        u_c = u_b + (0.96 - u_b) * 0.62
        splits = [0.04, u_b - 0.03, u_b + 0.03, u_c - 0.025, u_c + 0.025, 0.96]
    for key, quad in (("side+", cv[[1, 2, 6, 5]]), ("side-", cv[[0, 3, 7, 4]])):
        cab[key].decals = [
            Decal(quad_points(quad, rect_st(splits[i], splits[i + 1], 0.07, 0.9)), glass)
            for i in range(0, len(splits), 2)
        ]
    return cabin, cv, wb

def _build_mirrors(rng: np.random.Generator, f: _Frame, st: _Stations, mats: _Paints, cv: np.ndarray, wb: float) -> list[Part]:
    """Mirrors stick out past the body from the A-pillar, just above the sill."""
    belt, zb, x_rf = f.belt, cv[0, 2], cv[4, 0]
    xm = st.x_cf - (belt + 0.09 - zb) / (f.roof - zb) * (st.x_cf - x_rf) + 0.02
    mirror_paint = mats.paint if rng.random() < 0.7 else mats.dark
    return [
        make_box(xm - 0.06, xm + 0.06, -wb - 0.21, -wb + 0.03, belt + 0.03, belt + 0.15, mirror_paint),
        make_box(xm - 0.06, xm + 0.06, wb - 0.03, wb + 0.21, belt + 0.03, belt + 0.15, mirror_paint),
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

def make_car(rng: np.random.Generator, car_id: str, paint_rgb: Colour) -> Car:
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
    return Car(
        car_id=car_id, style=f.style, paint=mats.paint, length=f.length, width=f.width, belt=f.belt,
        clearance=f.clearance, wheel_r=f.wheel_r, body=body, cabin=cabin, wheels=wheels, mirrors=mirrors,
        cap_profile=cap, hood_quad=quads["hood"][[0, 1, 2, 3]], roof_quad=cv[[4, 5, 6, 7]],
        windshield_quad=cv[[0, 1, 5, 4]], rear_quad=cv[[3, 2, 6, 7]],
        streak_z=f.clearance + (f.belt - f.clearance) * uniform(rng, (0.62, 0.82)), streak_h=uniform(rng, (0.03, 0.06)),
        phase=uniform(rng, (0, 2 * np.pi)), metadata=metadata,
    )
