"""The demo's rotating studio: backdrop, camera and lights of one photo session, and the rendering of one view.

A car is painted back to front with Pillow polygons at full resolution,
and the photo's car pixels are composited through the very mask that is
saved, so photo and mask always agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from carmask.demo.car import Car
from carmask.demo.shapes import (
    Decal,
    Face,
    Material,
    Part,
    clip_convex,
    ellipse_st,
    on_side,
    quad_points,
    rect_st,
    uniform,
)


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

    def sees(self, face: Face) -> bool:
        """Back-face culling: the face's outside looks towards the camera."""
        return float(np.dot(face.normal, self.pos - face.point)) > 0

def _backdrop(rng: np.random.Generator, width: int, height: int, horizon: float, cx: float,
              noise: Image.Image) -> tuple[Image.Image, float, float, np.ndarray]:
    """The studio's backdrop photo; with the wall's and floor's brightest and darkest levels and the colour cast.

    A wall with a vertical gradient meets a darker floor at row ``horizon`` (a
    soft cyclorama curve), with a slight colour cast, a vignette and sensor noise.
    """
    wall_top, wall_low = uniform(rng, (222, 234)), uniform(rng, (238, 248))
    floor_hi, floor_lo = uniform(rng, (214, 226)), uniform(rng, (192, 208))
    rows = np.arange(height, dtype=np.float32)
    t_wall = np.clip(rows / max(horizon, 1.0), 0, 1) ** 1.5
    wall = wall_top + (wall_low - wall_top) * t_wall
    t_floor = np.clip((rows - horizon) / max(height - horizon, 1.0), 0, 1) ** 0.8
    floor = floor_hi + (floor_lo - floor_hi) * t_floor
    band = uniform(rng, (0.015, 0.03)) * height
    blend = np.clip((rows - horizon + band) / (2 * band), 0, 1)
    blend = blend * blend * (3 - 2 * blend)
    level = wall * (1 - blend) + floor * blend
    cast = uniform(rng, (-0.015, 0.015))
    tint = np.array([1 + cast, 1 + 0.3 * cast, 1 - 0.8 * cast], dtype=np.float32)
    cols = (np.arange(width, dtype=np.float32) - cx) / (width / 2)
    vignette = 1 - uniform(rng, (0.03, 0.07)) * cols * cols
    # Rows x columns: a 1-pixel-wide gradient and a 1-pixel-high vignette,
    # stretched and multiplied by Pillow (a few ms, against ~100 for numpy).
    column = np.clip(level[:, None] * tint[None, :] + 0.5, 0, 255).astype(np.uint8)
    rows_img = Image.fromarray(np.ascontiguousarray(column[:, None, :]), "RGB")
    rows_img = rows_img.resize((width, height), Image.NEAREST)
    vig = np.clip(vignette * 255 + 0.5, 0, 255).astype(np.uint8)[None, :]
    vig_img = Image.fromarray(vig, "L").resize((width, height), Image.NEAREST).convert("RGB")
    background = ImageChops.multiply(rows_img, vig_img)
    # The backdrop's sensor noise is drawn once per car; each view adds fresh
    # noise to the car pixels only (see render_view), which is what it costs
    # to keep the render fast, and the backdrop is static in a studio anyway.
    ox, oy = (int(v) for v in rng.integers(0, _NOISE_PAD + 1, 2))
    background = ImageChops.add(background, noise.crop((ox, oy, ox + width, oy + height)), 1.0, -_NOISE_BIAS)
    return background, wall_low, floor_lo, tint


def make_studio(rng: np.random.Generator, width: int, height: int, car_length: float, belt: float,
                 noise: Image.Image) -> _Studio:
    """Camera placement, lighting and the backdrop image (:func:`_backdrop`), built once per car.

    All views of a car share them, as the studio's camera and lights stay put
    while the turntable turns.
    """
    distance = uniform(rng, (5.3, 5.8))
    # The photographer half compensates for the car's size (as framing would),
    # so small and long cars both fill roughly 40% (front) to 70% (side).
    focal = width * uniform(rng, (0.71, 0.755)) * math.sqrt(4.6 / car_length)
    # Above the body top (the painter's order relies on it), lowish like Carvana's.
    cam_height = max(uniform(rng, (1.15, 1.4)), belt + 0.2)
    target_z = uniform(rng, (0.62, 0.74))
    cx = width * (0.5 + uniform(rng, (-0.03, 0.03)))
    cy = height * (0.56 + uniform(rng, (-0.025, 0.025)))
    wall_dist = uniform(rng, (5.0, 8.0))

    # Row of the wall/floor line: project a point on it (straight behind the car).
    pitch = math.atan2(cam_height - target_z, distance)
    depth, drop = distance + wall_dist, cam_height
    angle_below = math.atan2(drop, depth) - pitch
    horizon = cy + focal * math.tan(angle_below)

    background, wall_low, floor_lo, tint = _backdrop(rng, width, height, horizon, cx, noise)

    shadow = np.array([floor_lo, floor_lo, floor_lo]) * uniform(rng, (0.25, 0.4))
    return _Studio(
        width=width, height=height, focal=focal, distance=distance, cam_height=cam_height,
        target_z=target_z, cx=cx, cy=cy,
        wall=np.array([wall_low] * 3) * tint, floor=np.array([floor_lo] * 3) * tint * 0.72,
        shadow_rgb=tuple(int(v) for v in shadow), shadow_strength=uniform(rng, (0.55, 0.75)),
        background=background,
    )

def _colour(mat: Material, normal: np.ndarray, cam: _Camera, studio: _Studio) -> np.ndarray:
    """Lambert shading under the key light plus a mirror of the wall or floor."""
    shade = 0.66 + 0.38 * max(0.0, float(np.dot(normal, cam.light)))
    env = studio.floor if mat.env == "floor" or normal[2] < -0.3 else studio.wall
    return np.asarray(mat.rgb) * shade * (1 - mat.refl) + env * mat.refl

def _rgb(c: np.ndarray) -> tuple[int, int, int]:
    """Float colour to a Pillow ink (plain Python: called for every polygon)."""
    r, g, b = (min(255, max(0, round(float(v)))) for v in c)
    return r, g, b

def _view_decals(car: Car, cam: _Camera, theta: float, rng: np.random.Generator) -> dict[str, list[Decal]]:
    """Specular highlights for one view: they slide as the car turns under fixed lights.

    Near-white streaks on shoulders, hood, roof and glass are exactly what
    fools a "not background-coloured" rule, so every view gets some.
    """
    white = (253.0, 253.0, 253.0)
    soft = (235.0, 236.0, 238.0)
    out: dict[str, list[Decal]] = {}
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
            clipped = clip_convex(band, cap)
            if len(clipped) >= 3:
                decals.append(Decal(on_side(clipped, y), tint=tint, alpha=alpha))
        xv = 0.35 * length * math.sin(2 * theta + car.phase) + rng.uniform(-0.2, 0.2)
        wv = rng.uniform(0.1, 0.2)
        vert = np.array([[xv - wv, car.clearance], [xv + wv, car.clearance],
                         [xv + wv + 0.1, car.belt], [xv - wv + 0.1, car.belt]])
        clipped = clip_convex(vert, cap)
        if len(clipped) >= 3:
            decals.append(Decal(on_side(clipped, y), tint=soft, alpha=0.16))
        out[key] = decals

    cs = 0.5 + 0.3 * math.sin(theta + car.phase)
    out["hood"] = [
        Decal(quad_points(car.hood_quad, ellipse_st(cs, 0.5, 0.1, 0.45)), tint=soft, alpha=0.25),
        Decal(quad_points(car.hood_quad, ellipse_st(cs, 0.5, 0.04, 0.32)), tint=white, alpha=0.9),
    ]
    tr = 0.5 + 0.25 * math.cos(theta + car.phase)
    out["roof"] = [
        Decal(quad_points(car.roof_quad, rect_st(0.04, 0.96, tr - 0.16, tr + 0.16)), tint=soft, alpha=0.35),
        Decal(quad_points(car.roof_quad, rect_st(0.08, 0.92, tr - 0.05, tr + 0.05)), tint=white, alpha=0.88),
    ]
    for key, quad in (("windshield", car.windshield_quad), ("rear", car.rear_quad)):
        o = float(rng.uniform(0.05, 0.45))
        out[key] = [Decal(quad_points(quad, [(o, 0.05), (o + 0.14, 0.05), (o + 0.42, 0.92), (o + 0.28, 0.92)]), tint=soft, alpha=0.45)]
    return out

def _draw_part(part: Part, cam: _Camera, studio: _Studio, draw: ImageDraw.ImageDraw,
               mdraw: ImageDraw.ImageDraw, extra: dict[str, list[Decal]]) -> None:
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

def _draw_shadow(img: Image.Image, car: Car, cam: _Camera, studio: _Studio) -> None:
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

def render_view(car: Car, studio: _Studio, theta: float, rng: np.random.Generator,
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

def noise_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Sensor-like noise, biased by +_NOISE_BIAS; drawn once per dataset.

    Triangular (sum of two uniform 0..4 integers: sigma 2 per channel) rather
    than Gaussian: it is drawn straight as ``uint8``, ten times faster.
    """
    shape = (height + _NOISE_PAD, width + _NOISE_PAD, 3)
    n = rng.integers(0, 5, shape, dtype=np.uint8) + rng.integers(0, 5, shape, dtype=np.uint8)
    return Image.fromarray(n, "RGB")
