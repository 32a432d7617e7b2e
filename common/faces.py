"""Built-in procedural faces with ground truth.

A face is a dict of per-face parameters (``sample_params``) drawn into pixels by
``render(params, style, size)``. The geometry is 3D and exact:

- the head is an ellipsoid rotated by (yaw, pitch, roll) and projected
  orthographically; its front surface is solved per pixel, which gives a depth,
  a surface normal (for shading) and the head-frame coordinates (x_h, y_h) of
  the skin under each pixel;
- eyes, brows, irises, mouth, beard, hairline and glasses are *painted* on the
  head surface as ellipses in (x_h, y_h), so they move, foreshorten and hide
  behind the silhouette exactly as the head turns;
- the nose and the hair volume are small ellipsoids of their own, the ears flat
  ellipses where a point at the head's side projects (painter's order: hair
  volume and ears behind the head, nose in front);
- gaze (eye-in-head rotation) moves the irises across the eye whites.

The per-face random ranges are ``RANGES``; every fixed number of the shape is a named
field of ``Geometry``, with its unit and meaning.

Sign conventions (degrees): yaw > 0 turns the face towards the image's right,
pitch > 0 looks up, roll > 0 tilts clockwise; gaze_yaw > 0 moves the irises to
the image's right, gaze_pitch > 0 moves them up (gaze is relative to the head).

Determinism: face i of seed s has its own random stream
``numpy.random.default_rng([s, i])``, so it is the same image on every machine
whatever batch it is drawn in. Rendering is batched torch on the CPU (or any
device): thousands of 64×64 faces per second on one core (README, benchmark).
"""
from dataclasses import dataclass, replace

import numpy as np
import torch

STYLES = ("photo", "render", "mask", "nir", "anime", "sketch")

# (name, low, high): the order fixes each face's random stream -- append only.
RANGES = [
    ("face_width", 0.90, 1.08), ("face_length", 0.95, 1.06), ("skin_tone", 0.0, 1.0),
    ("hair_style", 0.0, 4.0), ("hair_colour", 0.0, 1.0), ("brow_thickness", 0.6, 1.3),
    ("eye_size", 0.85, 1.2), ("eye_colour", 0.0, 1.0), ("nose_size", 0.8, 1.2),
    ("mouth_width", 0.8, 1.2), ("smile", -0.3, 1.0), ("beard", 0.0, 1.0), ("glasses", 0.0, 1.0),
    ("yaw", -25.0, 25.0), ("pitch", -15.0, 15.0), ("roll", -6.0, 6.0),
    ("gaze_yaw", -25.0, 25.0), ("gaze_pitch", -15.0, 15.0),
    ("light_azimuth", -45.0, 45.0), ("light_elevation", 5.0, 50.0), ("light_strength", 0.3, 0.65),
    ("bg_hue", 0.0, 1.0), ("bg_value", 0.25, 0.9), ("bg_angle", 0.0, 6.2832),
    ("scale", 0.60, 0.68), ("shift_x", -0.05, 0.05), ("shift_y", 0.0, 0.08),
]
BEARD_P, GLASSES_P = 0.2, 0.2   # fraction of faces with a beard / glasses
HAIR_STYLES = ("bald", "short", "medium", "long")
IDENTITY = ("face_width", "face_length", "skin_tone", "hair_style", "hair_colour", "brow_thickness",
            "eye_size", "eye_colour", "nose_size", "mouth_width", "beard", "glasses")
POSE_GAZE = ("yaw", "pitch", "roll", "gaze_yaw", "gaze_pitch")
TEXTURE = 16   # side of the per-face low-frequency texture (skin, hair, background)

SKIN = torch.tensor([[0.98, 0.84, 0.74], [0.93, 0.73, 0.60], [0.80, 0.58, 0.43],
                     [0.64, 0.44, 0.32], [0.50, 0.34, 0.24]])
HAIR = torch.tensor([[0.08, 0.06, 0.05], [0.25, 0.16, 0.10], [0.45, 0.30, 0.18],
                     [0.55, 0.25, 0.12], [0.85, 0.70, 0.42], [0.62, 0.60, 0.58]])
IRIS = torch.tensor([[0.30, 0.18, 0.08], [0.45, 0.35, 0.15], [0.25, 0.45, 0.25],
                     [0.25, 0.45, 0.70], [0.45, 0.50, 0.55]])


@dataclass(frozen=True)
class Geometry:
    """Every number of a face's shape, by name, with its unit and meaning: ``_Face`` reads them here.

    Lengths are in head units: the head is an ellipsoid centred at 0 whose vertical
    semi-axis is 1 (times face_length), so the crown is at y = -1 and the chin at y = +1;
    x grows towards the image's right, y downwards, z towards the camera. Features are
    painted at head-frame (x, y) on the skin, mirrored about x = 0. "× eye_size" means
    times that per-face parameter of ``RANGES`` (about 1). A ramp is the distance over
    which a part's edge fades from 1 to 0; d = (r / radius)² inside an ellipse.
    ``ANIME`` below changes a few of these numbers.
    """
    # head
    head_half_width: float = 0.76       # × face_width (the half-height is face_length itself)
    head_depth: float = 0.82            # z semi-axis
    # nose: an ellipsoid in front of the face; its sizes are × nose_size × nose_scale ("× nose")
    nose_scale: float = 1.0
    nose_y: float = 0.14                # centre, below the head's centre
    nose_z: float = 0.74                # centre's depth, plus nose_z_per_size × nose:
    nose_z_per_size: float = 0.04       # a bigger nose sticks out further
    nose_semi_axes: tuple = (0.075, 0.2, 0.13)   # (x, y, z) × nose
    nostril_x: float = 0.055            # × nose, from the midline
    nostril_y: float = 0.3
    nostril_half_height: float = 0.018  # × nose
    nostril_aspect: float = 1.6         # width / height
    # hair volume: the head ellipsoid grown and moved; each longer style adds to the shorter one
    hair_grow: tuple = (1.12, 1.06, 1.05)   # short hair: × the head's semi-axes (x, y, z)
    hair_y: float = -0.1                # short hair: centre height (above the head's) ...
    hair_z: float = -0.12               # ... and depth (behind it)
    medium_hair_wider: float = 0.1      # medium and long: + this to hair_grow's x
    medium_hair_longer: float = 0.06    # medium and long: + this to hair_grow's y
    medium_hair_drop: float = 0.1       # medium and long: centre lower by this
    long_hair_longer: float = 0.3       # long: + this more to hair_grow's y
    long_hair_drop: float = 0.3         # long: centre lower by this more
    hair_ends: tuple = (-9.0, 0.05, 0.55, 9.0)  # per HAIR_STYLES: height where the volume stops (bald: none, long: uncut)
    hair_end_ramp: float = 0.08
    # ears and neck: flat shapes; the ears sit where a point of the head projects, the neck does not turn
    ear_x: float = 0.97                 # × head half-width: at the head's side
    ear_y: float = 0.06
    ear_z: float = -0.05                # a little behind the head's centre
    ear_half_width: float = 0.05        # seen edge-on from the front, plus ...
    ear_half_width_turned: float = 0.08  # ... this × how far the head's side faces the camera (|sin yaw|)
    ear_half_height: float = 0.17
    neck_y: float = 0.95                # centre, in image-aligned head units
    neck_half_width: float = 0.5
    neck_half_height: float = 0.75
    neck_side_shadow: float = 0.3       # light lost at the neck's sides, as on a cylinder
    # eyes: ellipses painted on the head; their sizes are × eye_size
    eye_x: float = 0.31                 # × face_width, from the midline to each eye's centre
    eye_y: float = 0.0                  # height of the eyes' centres
    eye_half_width: float = 0.17        # × eye_size × eye_width_scale
    eye_half_height: float = 0.08       # × eye_size × eye_height_scale
    eye_width_scale: float = 1.0
    eye_height_scale: float = 1.0       # scales the iris and the eyeball too
    lid_thickness: float = 0.7          # the dark line along the eye's outline, in units of d
    lid_below_centre: float = 0.02      # the line stops this far below the eye's centre: upper lid and corners
    socket_rise: float = 0.04           # the shadowed socket: centre this far above the eye's
    socket_half_width: float = 0.26
    socket_half_height: float = 0.17
    socket_softness: float = 0.6        # fades from d = 0.4 to d = 1.6
    cheek_x: float = 0.85               # the hollow under the cheekbone: × head half-width
    cheek_y: float = 0.55
    cheek_half_width: float = 0.25
    cheek_half_height: float = 0.35
    cheek_softness: float = 0.6         # as the socket's
    iris_radius: float = 0.068          # × eye_size × eye_height_scale
    eyeball_radius: float = 0.2         # × eye_size × eye_height_scale: gaze moves the iris by this × sin(angle)
    pupil_d: float = 0.2                # the pupil is d < this in the iris: 0.45 of its radius
    glint_x: float = 0.03               # anime's white glint: right of each eye's centre ...
    glint_y: float = 0.03               # ... at this height (not relative to the eye)
    glint_radius: float = 0.03
    # brows
    brow_above_eye: float = 0.19        # brow centre above the eye's centre
    brow_out: float = 0.02              # brow centre this far further from the midline than the eye's
    brow_half_length: float = 0.17
    brow_half_height: float = 0.045     # × brow_thickness
    brow_arch: float = 0.05             # the brow's ends lie this much lower than its middle
    # glasses: a ring per lens and a bridge
    lens_half_width: float = 0.2
    lens_half_height: float = 0.15
    lens_drop: float = 0.01             # lens centre below the eye's
    frame_thickness: float = 0.12       # in units of d
    bridge_half_length: float = 0.09
    bridge_rise: float = 0.02           # above the eyes' centre
    bridge_half_height: float = 0.018
    # mouth
    mouth_y: float = 0.52
    mouth_half_width: float = 0.19      # × mouth_width × mouth_width_scale
    mouth_width_scale: float = 1.0
    mouth_bend: float = 0.06            # the corners move down by this × smile: smile > 0 is a frown (sic)
    lip_half_height: float = 0.055
    mouth_line_half_height: float = 0.016
    # where the hair on the scalp starts
    hairline_y: float = -0.5            # at the midline, and ...
    hairline_curve: float = 0.25        # ... this much lower at the head's sides
    hairline_ramp: float = 0.04
    temple_hair_x: float = 0.86         # medium and long: hair covers the sides beyond this × head half-width ...
    temple_hair_ramp: float = 0.04      # (same unit)
    temple_hair_bottom: float = 0.1     # ... down to this height
    # beard
    beard_top: float = 0.5              # the beard starts below this height at the midline, ...
    beard_jaw_rise: float = 0.15        # ... this much higher at |x| = beard_jaw_x, ...
    beard_jaw_x: float = 0.6
    beard_top_highest: float = 0.3      # ... and never above this
    beard_ramp: float = 0.05


GEOMETRY = Geometry()
ANIME = replace(GEOMETRY, nose_scale=0.4, eye_y=0.08, eye_width_scale=1.2, eye_height_scale=1.9,
                brow_above_eye=0.26, mouth_y=0.48, mouth_width_scale=0.5)   # small nose and mouth, big low eyes


def sample_params(n, seed=0, start=0, **fixed):
    """Parameters of faces ``start .. start+n-1`` of stream ``seed``.

    ``fixed`` overrides a parameter: a number or a length-n sequence sets it
    (``yaw=0``), a ``(low, high)`` tuple narrows its range (``yaw=(-15, 15)``)
    while keeping every other parameter of the face unchanged.
    Returns a dict of float32 tensors of shape (n,), plus ``texture`` (n, 16, 16).
    """
    unknown = set(fixed) - {name for name, _, _ in RANGES}
    if unknown:
        raise ValueError(f"unknown face parameter(s) {sorted(unknown)}; known: {[r[0] for r in RANGES]}")
    rngs = [np.random.default_rng([seed, i]) for i in range(start, start + n)]
    u = np.stack([rng.random(len(RANGES)) for rng in rngs]).reshape(n, len(RANGES))
    texture = np.stack([rng.standard_normal((TEXTURE, TEXTURE)) for rng in rngs]).reshape(n, TEXTURE, TEXTURE)
    params = {}
    for k, (name, low, high) in enumerate(RANGES):
        value = fixed.get(name, (low, high))
        if isinstance(value, tuple):
            low, high = value
            value = low + u[:, k] * (high - low)
            if name == "hair_style":
                value = np.floor(np.clip(value, 0, 3.999))
            elif name in ("beard", "glasses"):
                value = (u[:, k] < (BEARD_P if name == "beard" else GLASSES_P)).astype(np.float64)
        params[name] = torch.as_tensor(np.broadcast_to(np.asarray(value, dtype=np.float32), (n,)).copy())
    params["texture"] = torch.as_tensor(texture, dtype=torch.float32)
    return params


def repeat_face(params, index, n, **values):
    """Face ``index`` of ``params`` repeated n times, with some parameters set per copy.

    ``repeat_face(p, 0, 9, yaw=torch.linspace(-40, 40, 9))`` is a yaw sweep of one face.
    """
    out = {name: value[index:index + 1].repeat_interleave(n, 0) for name, value in params.items()}
    for name, value in values.items():
        out[name] = torch.as_tensor(value, dtype=torch.float32).expand(n).clone()
    return out


def _rotation(yaw, pitch, roll):
    """R = R_roll · R_pitch · R_yaw (B, 3, 3), with the sign conventions of the module docstring."""
    y, p, r = (torch.deg2rad(a) for a in (yaw, pitch, roll))
    one, zero = torch.ones_like(y), torch.zeros_like(y)
    r_yaw = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], -1)
    r_pitch = torch.stack([one, zero, zero, zero, p.cos(), -p.sin(), zero, p.sin(), p.cos()], -1)
    r_roll = torch.stack([r.cos(), -r.sin(), zero, r.sin(), r.cos(), zero, zero, zero, one], -1)
    return r_roll.view(-1, 3, 3) @ r_pitch.view(-1, 3, 3) @ r_yaw.view(-1, 3, 3)


def _col(t):
    """(B,) -> (B, 1, 1), to broadcast a per-face number over pixels."""
    return t.reshape(-1, 1, 1)


def _ellipsoid(x, y, centre, axes, R, edge, light=None, surface=False):
    """Front surface of a rotated ellipsoid, seen along z (orthographic projection).

    x: (1, 1, W) and y: (B, H, 1) pixel coordinates in head units; centre and axes
    (B, 3) in the head frame; R (B, 3, 3) head → camera. With A = R·diag(axes⁻²)·Rᵀ
    and p = (x, y, z) relative to the rotated centre, the surface is pᵀAp = 1:
        A_zz·z² + 2·b·z + (q − 1) = 0,  b = A_xz·x + A_yz·y,  q = the xy part of pᵀAp,
    so a pixel is covered where disc = b² − A_zz·(q − 1) > 0 and sees z = (√disc − b)/A_zz.
    Returns a dict: ``alpha`` (B, H, W) with a ~1 px soft edge; with ``surface`` the
    head-frame coordinates ``xh``, ``yh`` of the visible point (relative to ``centre``);
    with a ``light`` direction (B, 3) the Lambert term max(0, n·l) with n ∝ A·p.
    Terms depending on x or y alone stay (B, 1, W) or (B, H, 1): that keeps it fast.
    """
    c = (R @ centre.unsqueeze(-1)).squeeze(-1)
    A = R @ torch.diag_embed(axes.pow(-2)) @ R.transpose(1, 2)
    a = [[_col(A[:, i, j]) for j in range(3)] for i in range(3)]
    x = x - _col(c[:, 0])
    y = y - _col(c[:, 1])
    b = a[0][2] * x + a[1][2] * y
    q = torch.addcmul(a[0][0] * x * x - 1 + a[1][1] * y * y, 2 * a[0][1] * x, y)
    disc = torch.addcmul(-a[2][2] * q, b, b)
    # Near the silhouette disc ≈ 2·distance/r³ (exact for a sphere of radius r): a 1 px ramp.
    out = {"alpha": (disc * _col(axes.mean(1).pow(3) / (2 * edge)) + 0.5).clamp_(0, 1)}
    if light is None and not surface:
        return out
    z = disc.clamp_(min=1e-12).sqrt_().sub_(b).div_(a[2][2])          # (1e-12: no slow denormals)
    if surface:
        rt = [[_col(R[:, j, i]) for j in range(3)] for i in range(3)]   # Rᵀ: camera → head frame
        out["xh"] = torch.addcmul(rt[0][0] * x + rt[0][1] * y, rt[0][2], z)
        out["yh"] = torch.addcmul(rt[1][0] * x + rt[1][1] * y, rt[1][2], z)
    if light is not None:
        n = [torch.addcmul(a[i][0] * x + a[i][1] * y, a[i][2], z) for i in range(3)]
        al = (A @ light.unsqueeze(-1)).squeeze(-1)                      # n·l = (A·l)·p
        n_dot_l = torch.addcmul(_col(al[:, 0]) * x + _col(al[:, 1]) * y, _col(al[:, 2]), z)
        norm2 = torch.addcmul(torch.addcmul(n[0] * n[0], n[1], n[1]), n[2], n[2])
        out["lambert"] = n_dot_l.mul_(norm2.clamp_(min=1e-12).rsqrt_()).clamp_(min=0)
    return out


def _ellipse(u, v, edge):
    """Soft 2D ellipse from normalised coordinates u, v: returns (alpha, d), d = u² + v².

    ``edge`` is one pixel in units of the ellipse's smaller radius; near d = 1 a step of
    one pixel changes d by about 2·edge, hence the 1 px ramp below.
    """
    d = torch.addcmul(v * v, u, u)
    return ((1 - d) / (2 * edge) + 0.5).clamp_(0, 1), d


def _ring(d, thickness):
    """A line along the outline d = 1 of an ellipse, ``thickness`` in units of d."""
    return (1 - (d - 1).abs_() / thickness).clamp_(0, 1)


def _palette(table, t):
    """Piecewise-linear colour from a (K, 3) table at t in [0, 1] -> (B, 3)."""
    pos = t.clamp(0, 1) * (len(table) - 1)
    lo = pos.floor().long().clamp(max=len(table) - 2)
    w = (pos - lo).unsqueeze(1)
    return table[lo] * (1 - w) + table[lo + 1] * w


def _hsv(h, s, v):
    """HSV -> RGB; h (B,), s and v numbers or (B,) -> (B, 3)."""
    s, v = torch.as_tensor(s).expand_as(h), torch.as_tensor(v).expand_as(h)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], 1)
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * torch.minimum(k, 4 - k).clamp(0, 1)


def _rgb(colour):
    """(B, 3) colour -> (B, 3, 1, 1), to composite over images."""
    return colour.view(-1, 3, 1, 1)


def _over(canvas, colour, alpha):
    """Paint ``colour`` ((B, 3, 1, 1) or (B, 3, H, W)) over ``canvas`` with ``alpha`` (B, H, W), in place."""
    canvas.lerp_(colour.expand_as(canvas), alpha.unsqueeze(1))


class _Face:
    """The geometry of a batch of faces at one resolution: coverage masks, shading and
    painted features, shared by every style (so a render→photo pair shares its pose)."""

    def __init__(self, p, size, anime=False, light=None):
        g = ANIME if anime else GEOMETRY                                      # every number, by name
        B = p["yaw"].shape[0]
        self.B, self.size, self.geometry = B, size, g
        grid = (torch.arange(size, dtype=torch.float32) + 0.5) * (2 / size) - 1
        self.u, self.v = grid.view(1, 1, -1), grid.view(1, -1, 1)            # image coordinates
        s = _col(p["scale"])
        x, y = (self.u - _col(p["shift_x"])) / s, (self.v - _col(p["shift_y"])) / s   # head units
        edge = (2 / size) / p["scale"]                                        # one pixel in head units
        R = _rotation(p["yaw"], p["pitch"], p["roll"])
        az, el = torch.deg2rad(p["light_azimuth"]), torch.deg2rad(p["light_elevation"])
        self.light = torch.stack([az.sin() * el.cos(), -el.sin(), az.cos() * el.cos()], 1) if light is None else light
        self.strength = p["light_strength"]
        half_width = g.head_half_width * p["face_width"]
        xh, yh = self._solids(p, g, x, y, R, edge, half_width)
        self._ears_and_neck(g, x, y, R, edge, half_width)
        eye_x = self._eyes(p, g, xh, yh, edge)
        self._lower_face(p, g, xh, yh, edge, half_width, anime)
        self.xh, self.yh, self.eye_x, self.edge = xh, yh, eye_x, edge

    def _solids(self, p, g, x, y, R, edge, half_width):
        """The head, the nose and the hair volume: ellipsoids (see _ellipsoid). Returns the head-frame
        coordinates (xh, yh) of the head's surface, where the features are painted."""
        zero = torch.zeros(self.B)
        axes = torch.stack([half_width, p["face_length"], zero + g.head_depth], 1)
        head = _ellipsoid(x, y, torch.zeros(self.B, 3), axes, R, edge, self.light, surface=True)
        self.head, self.head_light, xh, yh = head["alpha"], head["lambert"], head["xh"], head["yh"]
        nose = p["nose_size"] * g.nose_scale
        solid = _ellipsoid(x, y, torch.stack([zero, zero + g.nose_y, g.nose_z + g.nose_z_per_size * nose], 1),
                           torch.stack([a * nose for a in g.nose_semi_axes], 1), R, edge, self.light)
        self.nose, self.nose_light = solid["alpha"], solid["lambert"]
        style = p["hair_style"]                         # 0 bald, 1 short, 2 medium, 3 long
        medium_or_long, long = style >= 2, style >= 3
        wide, tall, deep = g.hair_grow
        grow = torch.stack([wide + g.medium_hair_wider * medium_or_long,
                            tall + g.medium_hair_longer * medium_or_long + g.long_hair_longer * long, zero + deep], 1)
        centre = torch.stack([zero, g.hair_y + g.medium_hair_drop * medium_or_long + g.long_hair_drop * long,
                              zero + g.hair_z], 1)
        hair = _ellipsoid(x, y, centre, axes * grow, R, edge, self.light, surface=True)
        below = torch.tensor(g.hair_ends)[style.long()] - centre[:, 1]       # hair ends at this height
        self.hair = hair["alpha"].mul_(((_col(below) - hair["yh"]) / g.hair_end_ramp).clamp_(0, 1))
        self.hair_light = hair["lambert"]
        return xh, yh

    def _ears_and_neck(self, g, x, y, R, edge, half_width):
        """Ears and neck: flat 2D shapes placed where the 3D points project."""
        zero = torch.zeros(self.B)
        self.ears = []
        for side in (-1.0, 1.0):
            ear = torch.stack([side * g.ear_x * half_width, zero + g.ear_y, zero + g.ear_z], 1)
            ear = (R @ ear.unsqueeze(-1)).squeeze(-1)                          # where it projects
            width = g.ear_half_width + g.ear_half_width_turned * R[:, 2, 0].abs()
            self.ears.append(_ellipse((x - _col(ear[:, 0])) / _col(width), (y - _col(ear[:, 1])) / g.ear_half_height,
                                      _col(edge / width))[0])
        self.neck = _ellipse(x / g.neck_half_width, (y - g.neck_y) / g.neck_half_height,
                             _col(edge / g.neck_half_width))[0]
        self.neck_light = (1 - g.neck_side_shadow * (x / g.neck_half_width) ** 2).clamp(0, 1)

    def _eyes(self, p, g, xh, yh, edge):
        """Eyes, lids, sockets, cheeks, irises turned by the gaze, pupils, brows and glasses, painted on the head
        surface in head-frame coordinates. Mirrored pairs: |xh| draws the left and the right one at once.
        Returns the eyes' distance from the middle, eye_x."""
        zero = torch.zeros(self.B)
        mirror = xh.abs()
        eye_x, eye_y = g.eye_x * p["face_width"], zero + g.eye_y
        eye_rx = g.eye_half_width * p["eye_size"] * g.eye_width_scale
        eye_ry = g.eye_half_height * p["eye_size"] * g.eye_height_scale
        self.eye_white, d = _ellipse((mirror - _col(eye_x)) / _col(eye_rx), (yh - _col(eye_y)) / _col(eye_ry),
                                     _col(edge / eye_ry))
        self.lid = _ring(d, g.lid_thickness).mul_(yh < _col(eye_y) + g.lid_below_centre)
        # The eye socket lies in shadow: a wide, soft dark patch around each eye.
        self.socket = _ellipse((mirror - _col(eye_x)) / g.socket_half_width,
                               (yh - _col(eye_y) + g.socket_rise) / g.socket_half_height, g.socket_softness)[0]
        half_width = g.head_half_width * p["face_width"]
        self.cheek = _ellipse((mirror - _col(half_width) * g.cheek_x) / g.cheek_half_width,
                              (yh - g.cheek_y) / g.cheek_half_height, g.cheek_softness)[0]   # hollow under the cheekbone
        # Gaze turns the eyeball: the iris moves by eyeball_radius·sin(angle) across the eye.
        iris_r = g.iris_radius * p["eye_size"] * g.eye_height_scale
        eyeball = g.eyeball_radius * p["eye_size"] * g.eye_height_scale
        gaze_x = eyeball * torch.sin(torch.deg2rad(p["gaze_yaw"]))
        gaze_y = -eyeball * torch.sin(torch.deg2rad(p["gaze_pitch"]))
        self.iris, d = _ellipse(((xh - _col(gaze_x)).abs_() - _col(eye_x)) / _col(iris_r),
                                (yh - _col(eye_y + gaze_y)) / _col(iris_r), _col(edge / iris_r))
        self.iris.mul_(self.eye_white)
        # A sharp rim: there one pixel moves d by about 0.9·edge/iris_r, so 0.4 makes a ~0.45 px ramp.
        self.pupil = ((g.pupil_d - d) / _col(0.4 * edge / iris_r) + 0.5).clamp_(0, 1).mul_(self.eye_white)
        brow_y, brow_ry = eye_y - g.brow_above_eye, g.brow_half_height * p["brow_thickness"]
        u = (mirror - _col(eye_x + g.brow_out)) / g.brow_half_length
        self.brow = _ellipse(u, (yh - _col(brow_y) - g.brow_arch * u * u) / _col(brow_ry), _col(edge / brow_ry))[0]
        lens = _ellipse((mirror - _col(eye_x)) / g.lens_half_width,
                        (yh - _col(eye_y) - g.lens_drop) / g.lens_half_height, 1.0)[1]
        glasses = _ring(lens, g.frame_thickness)                              # the frame: a ring along the lens outline
        glasses += _ellipse(xh / g.bridge_half_length, (yh - _col(eye_y) + g.bridge_rise) / g.bridge_half_height,
                            _col(edge / g.bridge_half_height))[0]
        self.glasses = glasses.clamp_(max=1).mul_(_col(p["glasses"]))
        return eye_x

    def _lower_face(self, p, g, xh, yh, edge, half_width, anime):
        """Nostrils, lips and the mouth line (bent by the smile), the hair cap and temples, the beard."""
        mirror = xh.abs()
        nose = p["nose_size"] * g.nose_scale
        nostril = _col(g.nostril_half_height * nose)
        self.nostrils = _ellipse((mirror - _col(g.nostril_x * nose)) / (nostril * g.nostril_aspect),
                                 (yh - g.nostril_y) / nostril, _col(edge) / nostril)[0]
        mouth_rx, mouth_y = g.mouth_half_width * p["mouth_width"] * g.mouth_width_scale, g.mouth_y
        u = xh / _col(mouth_rx)
        v = yh - mouth_y - _col(g.mouth_bend * p["smile"]) * u * u          # the corners bend down as smile grows
        self.lips = _ellipse(u, v / g.lip_half_height, _col(edge) / g.lip_half_height)[0]
        self.mouth_line = _ellipse(u, v / g.mouth_line_half_height, _col(edge) / g.mouth_line_half_height)[0]
        style = p["hair_style"]
        hairline = g.hairline_y + g.hairline_curve * (xh / _col(half_width)) ** 2
        cap = ((hairline - yh) / g.hairline_ramp).clamp_(0, 1)
        sides = ((mirror / _col(half_width) - g.temple_hair_x) / g.temple_hair_ramp).clamp_(0, 1)
        sides.mul_(yh < g.temple_hair_bottom)
        self.hair_cap = cap.add_(sides * _col(style >= 2)).clamp_(max=1).mul_(_col(style > 0))
        beard_edge = (g.beard_top - g.beard_jaw_rise * (xh / g.beard_jaw_x) ** 2)   # low in the middle, up along the jaw
        beard_edge.clamp_(min=g.beard_top_highest)
        self.beard = ((yh - beard_edge) / g.beard_ramp).clamp_(0, 1).mul_(1 - self.lips)
        self.beard.mul_(_col(p["beard"]) * (not anime))                      # no beards in anime

    def shade(self, lambert, toon=False):
        """Light falling on a surface: (1 − k) + k·max(0, n·l); ``toon`` keeps two levels (cel shading)."""
        if toon:
            lambert = (lambert > 0.25).float()
        k = _col(self.strength * (0.45 if toon else 1.0))
        return ((1 - k) + k * lambert).unsqueeze(1)


def _texture(p, size):
    """Per-face low-frequency texture (B, 1, size, size) around 0, from the face's 16×16 noise."""
    return torch.nn.functional.interpolate(p["texture"].unsqueeze(1), size=(size, size), mode="bilinear")


def _colours(p, style, B):
    """(B, 3) skin, hair and iris colours of each face, in ``style``'s palette."""
    skin, hair, iris = _palette(SKIN, p["skin_tone"]), _palette(HAIR, p["hair_colour"]), _palette(IRIS, p["eye_colour"])
    if style == "anime":
        skin = torch.tensor([1.0, 0.88, 0.80]).expand(B, 3)
        hair, iris = _hsv(p["hair_colour"], 0.65, 0.95), _hsv((p["eye_colour"] + 0.5) % 1, 0.8, 0.75)
    if style == "nir":   # skin bright, hair lighter, irises grey under near-infrared light
        skin = (0.75 + 0.1 * p["skin_tone"]).view(-1, 1).expand(B, 3)
        hair = (0.25 + 0.35 * p["hair_colour"]).view(-1, 1).expand(B, 3)
        iris = (0.35 + 0.15 * p["eye_colour"]).view(-1, 1).expand(B, 3)
    return skin, hair, iris


def _background(p, f, style, grain):
    """(B, 3, size, size): the canvas each style paints the face on."""
    B, size = f.B, f.size
    if style == "nir":     # the illuminator lights the face; the background falls off to dark
        return _col(0.12 * p["bg_value"]).unsqueeze(1).expand(B, 3, size, size).clone()
    if style == "anime":
        return _rgb(_hsv(p["bg_hue"], 0.18, 0.97)).expand(B, 3, size, size).clone()
    if style == "render":
        return _rgb(_hsv(p["bg_hue"], 0.35, p["bg_value"])).expand(B, 3, size, size).clone()
    ang = _col(p["bg_angle"])                  # photo: a two-tone gradient with its own texture
    g = (0.5 + 0.5 * (ang.cos() * f.u + ang.sin() * f.v)).unsqueeze(1)
    near, far = _rgb(_hsv(p["bg_hue"], 0.35, p["bg_value"])), _rgb(_hsv((p["bg_hue"] + 0.1) % 1, 0.2, 0.6 * p["bg_value"]))
    texture = (0.6 + 0.4 * grain).transpose(-1, -2)
    return (near * texture).addcmul_(far - near, g * texture)     # (near + (far − near)·g)·texture


def _head_albedo(f, style, skin, hair, iris, toon):
    """(B, 3, size, size): the head's unlit colours -- skin, lips, beard, hair cap, eyes, brows, nostrils."""
    B, size = f.B, f.size
    albedo = _rgb(skin).expand(B, 3, size, size).clone()
    lip = skin * torch.tensor([0.95, 0.62, 0.62]) if style != "nir" else skin * 0.85
    _over(albedo, _rgb(lip), f.lips)
    _over(albedo, _rgb(skin * 0.25), f.mouth_line)
    _over(albedo, _rgb(hair * 0.8), f.beard * 0.7)
    _over(albedo, _rgb(hair), f.hair_cap)
    _over(albedo, _rgb(torch.full((B, 3), 0.95 if toon else 0.78)), f.eye_white)
    _over(albedo, _rgb(iris), f.iris)
    _over(albedo, _rgb(torch.full((B, 3), 0.55 if style == "nir" else 0.03)), f.pupil)   # NIR: bright pupils
    if style == "anime":   # a white glint in each iris
        g = f.geometry
        glint = _ellipse(((f.xh - g.glint_x).abs_() - _col(f.eye_x)) / g.glint_radius,
                         (f.yh - g.glint_y) / g.glint_radius, _col(f.edge) / g.glint_radius)[0]
        _over(albedo, _rgb(torch.ones(B, 3)), glint.mul_(f.eye_white))
    _over(albedo, _rgb(torch.full((B, 3), 0.08)), f.lid)
    _over(albedo, _rgb(torch.lerp(hair, torch.tensor([0.1, 0.07, 0.05]), 0.6)), f.brow)
    _over(albedo, _rgb(skin * 0.3), f.nostrils * 0.8)
    return albedo


def _draw_colour(p, f, style):
    """photo / render / nir / anime: back to front -- background, hair, neck, ears, head, nose, glasses."""
    B, size = f.B, f.size
    toon = style in ("render", "anime")
    skin, hair, iris = _colours(p, style, B)
    # One-channel light factors are combined first; colours are multiplied in last (speed).
    grain = 1.0 if toon else 1 + (0.06 if style == "nir" else 0.12) * _texture(p, size)
    canvas = _background(p, f, style, grain)
    _over(canvas, _rgb(hair) * (f.shade(f.hair_light, toon) * grain), f.hair)
    _over(canvas, _rgb(skin) * (0.85 if toon else 0.6) * f.neck_light.unsqueeze(1), f.neck)   # in the chin's shadow
    for ear in f.ears:
        _over(canvas, _rgb(skin) * 0.9, ear)
    # The head: paint the albedo (unlit colours), then light it once.
    albedo = _head_albedo(f, style, skin, hair, iris, toon)
    light = f.shade(f.head_light, toon)
    if not toon:
        light = light * grain * (1 - (0.4 * f.socket + 0.25 * f.cheek).unsqueeze(1))
    _over(canvas, albedo.mul_(light), f.head)
    _over(canvas, _rgb(skin) * (f.shade(f.nose_light, toon) * grain), f.nose)
    _over(canvas, _rgb(skin * 0.45), (2.4 * f.nose * (1 - f.nose)).clamp_(max=1) * (1 - f.nose_light))  # its shadow line
    _over(canvas, _rgb(torch.full((B, 3), 0.15 if style == "nir" else 0.08)), f.glasses * f.head)
    if style == "anime":   # ink outline along the head's silhouette
        _over(canvas, _rgb(torch.full((B, 3), 0.15)), (4 * f.head * (1 - f.head)).clamp_(max=1))
    if style == "nir":
        canvas = canvas.mean(1, keepdim=True).expand(B, 3, size, size)
    return canvas


def _draw_mask(p, f):
    """The thesis's colour-coded 3D model (§3.1.1, Fig. 3.2): red skin, green eye whites,
    blue irises; glasses in white; black background; no hair, texture or shading."""
    canvas = torch.zeros(f.B, 3, f.size, f.size)
    red, green, blue, white = (_rgb(c.expand(f.B, 3)) for c in (*torch.eye(3), torch.ones(3)))
    for part in (f.neck, *f.ears, f.head, f.nose):
        _over(canvas, red, part)
    _over(canvas, green, f.eye_white * f.head)
    _over(canvas, blue, f.iris * f.head)
    _over(canvas, white, f.glasses * f.head)
    return canvas


def _draw_sketch(p, f):
    """A line drawing: dark outlines of the parts on white paper."""
    def outline(alpha):      # peaks on the soft 1 px edge of a coverage mask
        return (4 * alpha * (1 - alpha)).clamp_(max=1)
    inside = f.head
    lines = [outline(f.head), outline(f.hair * (1 - f.head)), 0.7 * outline(f.nose), outline(f.neck * (1 - f.head)),
             outline(f.hair_cap) * inside, outline(f.eye_white) * inside, 0.9 * f.iris * inside, 0.8 * f.brow * inside,
             (f.mouth_line + 0.5 * outline(f.lips) + 0.6 * f.nostrils).clamp_(max=1) * inside,
             f.glasses * inside, 0.35 * f.beard * inside]
    ink = torch.stack(lines).amax(0)
    return (1 - 0.92 * ink).unsqueeze(1).expand(f.B, 3, f.size, f.size)


def render(params, style="photo", size=64, chunk=64):
    """Draw faces: float32 (B, 3, size, size) in [-1, 1] (``nir`` has three equal channels).

    Works through the batch ``chunk`` faces at a time: small tensors stay in the CPU cache.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    n = params["yaw"].shape[0]
    out = torch.empty(n, 3, size, size)
    for i in range(0, n, chunk):
        p = {name: value[i:i + chunk] for name, value in params.items()}
        f = _Face(p, size, anime=(style == "anime"),
                  light=torch.tensor([0.15, -0.25, 0.96]).expand(len(p["yaw"]), 3) if style == "nir" else None)
        draw = {"mask": _draw_mask, "sketch": _draw_sketch}.get(style)
        img = draw(p, f) if draw else _draw_colour(p, f, style)
        out[i:i + chunk] = img.clamp_(0, 1) if img.is_contiguous() else img.clamp(0, 1)
    return out.mul_(2).sub_(1)
