"""Painters of the example chest phantom, one per group of structures, called in anatomical order.

Each painter writes Hounsfield units and label ids onto the :class:`~drreg._phantom.raster.Canvas` (directly, or
through :class:`~drreg._phantom.raster.Tubes`) from the shapes of :mod:`drreg._phantom.anatomy`; a painter may
overwrite what an earlier one painted.
"""

from __future__ import annotations

import numpy as np

from drreg._phantom.anatomy import (
    BODY_A,
    BODY_B_ANT,
    BODY_B_POST,
    BODY_N,
    BODY_Z,
    CAGE_CY,
    CAGE_S,
    CAGE_Z,
    HU_AIR,
    HU_BLOOD,
    HU_CANCELLOUS,
    HU_CARTILAGE,
    HU_CORTEX,
    HU_DISC,
    HU_FAT,
    HU_KIDNEY,
    HU_LIVER,
    HU_LUNG,
    HU_MUSCLE,
    HU_POSTERIOR_ELEMENTS,
    HU_RIB_CORTEX,
    HU_SKIN,
    HU_SOFT,
    HU_SPLEEN,
    LABEL_IDS,
    LUNG_GAP,
    cage_radius,
    cage_scale,
    diaphragm_z,
    rib_paths,
    spine_y,
)
from drreg._phantom.raster import GRID_SHAPE, SPACING, Canvas, Tubes, count_intervals, segment_distance, smooth_curve

__all__ = [
    "paint_abdomen",
    "paint_body",
    "paint_clavicles",
    "paint_heart",
    "paint_lungs",
    "paint_muscles",
    "paint_pulmonary_vessels",
    "paint_ribs",
    "paint_scapulae",
    "paint_spinal_canal",
    "paint_spine",
    "paint_sternum",
    "paint_vessels_and_airways",
]


def paint_body(cv: Canvas) -> dict:
    """Skin, subcutaneous fat, chest-wall muscle layer and the soft-tissue interior.

    Each layer is a superellipse per slice, ``|x/a|^n + |y/b|^n <= 1``; for every (x, z) column it covers an
    interval of y, so the nested layers are counted with :func:`count_intervals` in one pass.
    """
    x, _, z = cv.axes
    a = np.interp(z, BODY_Z, BODY_A)
    b_ant = np.interp(z, BODY_Z, BODY_B_ANT)
    b_post = np.interp(z, BODY_Z, BODY_B_POST)
    # (shrink of a, of b anterior, of b posterior) in mm: skin, 2 mm of skin, subcutaneous fat, muscle layer.
    shells = ((0.0, 0.0, 0.0), (2.0, 2.0, 2.0), (18.0, 11.0, 12.0), (30.0, 22.0, 24.0))
    firsts, lasts = [], []
    for shrink_a, shrink_ant, shrink_post in shells:
        tx = (np.abs(x)[:, None] / (a - shrink_a)[None, :]) ** BODY_N  # (X, Z)
        extent = np.clip(1.0 - tx, 0.0, None) ** (1.0 / BODY_N)
        first, last = cv.index_range(
            1, -(b_post - shrink_post)[None, :] * extent, (b_ant - shrink_ant)[None, :] * extent
        )
        last = np.where(tx < 1.0, last, -1)
        firsts.append(first)
        lasts.append(last)
    level = count_intervals(np.stack(firsts), np.stack(lasts), GRID_SHAPE[1], axis=1)
    np.take(np.array([HU_AIR, HU_SKIN, HU_FAT, HU_MUSCLE, HU_SOFT], dtype=np.float32), level, out=cv.hu)
    return {"wall": level == 4, "level": level}


def paint_lungs(cv: Canvas, rng: np.random.Generator) -> None:
    """Lungs: inside the rib cage, above the diaphragm, outside the mediastinum; with parenchymal texture.

    For each (x, y) column the cage and the diaphragm bound an interval of z (the cage scale rises to 1 below
    z = 0 and falls above), so the lung is an index interval per column; the mediastinum carves the middle.
    """
    found = cv.box((-150, -115, -150), (150, 110, 180))
    sl, xb, yb, zb = found
    x2, y2 = xb[:, :, 0], yb[:, :, 0]  # (X, 1), (1, Y)
    q = (np.hypot(x2, y2 - CAGE_CY) + LUNG_GAP) / cage_radius(np.arctan2(np.abs(x2), CAGE_CY - y2))
    # The cage scale s(z) exceeds q between z_low (rising branch) and z_high (falling branch).
    rising = np.array(CAGE_Z) <= -110.0
    falling = np.array(CAGE_Z) >= 0.0
    z_low = np.interp(q, np.array(CAGE_S)[rising], np.array(CAGE_Z)[rising], left=-1e9, right=1e9)
    z_high = np.interp(q, np.array(CAGE_S)[falling][::-1], np.array(CAGE_Z)[falling][::-1], left=1e9, right=-1e9)
    z_low = np.maximum(z_low, diaphragm_z(x2, y2) + 0.5 * SPACING[2])
    first, last = cv.index_range(2, z_low, z_high)
    k = np.arange(sl[2].start, sl[2].stop, dtype=np.int64)[None, None, :]
    inside = (k >= first[:, :, None]) & (k <= last[:, :, None])  # (X, Y, Z) in the box
    # Mediastinum: a midline band the lungs never cross (wider posteriorly: oesophagus, azygos, aorta) and,
    # above the heart, the great-vessel block between the right paratracheal line and the aortic knob.
    zz = zb[0, 0]
    band = np.abs(x2) <= np.where(y2 < -30.0, 15.0, 4.0)
    width = np.interp(zz, [25.0, 45.0, 85.0, 95.0, 110.0, 140.0, 175.0], [0.0, 30.0, 33.0, 35.0, 28.0, 19.0, 14.0])
    shift = np.interp(zz, [40.0, 90.0, 120.0], [4.0, -3.0, 0.0])
    middle = slice(int(np.searchsorted(xb[:, 0, 0], -42.0)), int(np.searchsorted(xb[:, 0, 0], 42.0)))
    xm = xb[middle]
    block = ((xm - shift.astype(np.float32)) / np.maximum(width, 1e-3).astype(np.float32)) ** 2
    block = (block + ((y2 + 5.0) / 42.0)[:, :, None] ** 2 <= 1.0) & (width > 0)
    mediastinum = block | band[middle][:, :, None]
    lung = inside.copy()
    lung[middle] &= ~mediastinum
    # Mediastinal fat fills the band and the block; organs and vessels are painted over it later.
    box_middle = (slice(sl[0].start + middle.start, sl[0].start + middle.stop), sl[1], sl[2])
    cv.paint(box_middle, inside[middle] & mediastinum, HU_FAT + 30.0, 0)
    # Parenchyma: denser posteriorly (gravity) plus a low-frequency texture of separable waves.
    value = np.float32(HU_LUNG) + (25.0 * np.clip(-y2 / 100.0, -0.5, 1.0)).astype(np.float32)[:, :, None]
    value = np.broadcast_to(value, lung.shape).copy()
    for _ in range(2):
        kx, ky, kz = rng.uniform(0.03, 0.09, size=3)
        px, py, pz = rng.uniform(0, 2 * np.pi, size=3)
        plane = (15.0 * np.cos(kx * x2 + px) * np.cos(ky * y2 + py)).astype(np.float32)
        value += plane[:, :, None] * np.cos(kz * zb + pz).astype(np.float32)
    split = int(np.searchsorted(xb[:, 0, 0], 0.0))  # x < 0 is the patient's left
    left = (slice(sl[0].start, sl[0].start + split), sl[1], sl[2])
    right = (slice(sl[0].start + split, sl[0].stop), sl[1], sl[2])
    cv.paint(left, lung[:split], value[:split], LABEL_IDS["lung_left"])
    cv.paint(right, lung[split:], value[split:], LABEL_IDS["lung_right"])


def paint_abdomen(cv: Canvas, wall: np.ndarray) -> None:
    found = cv.box((-160, -130, -180), (160, 120, -20))
    sl, xb, yb, zb = found
    below = zb < (diaphragm_z(xb[:, :, 0], yb[:, :, 0])[:, :, None] - 4.0)
    inner = wall[sl] & below
    # Liver: right upper quadrant, the left lobe reaching across the midline anteriorly.
    edge = -25.0 - 0.45 * np.clip(yb, 0, None)
    lower = -175.0 + 0.35 * np.clip(-xb + 60.0, 0.0, None) + 0.25 * np.clip(yb + 20, 0, None)
    liver = inner & (xb > edge) & (zb > lower)
    cv.paint(sl, liver, HU_LIVER, LABEL_IDS["liver"])
    # Spleen: posterolateral left, an ellipsoid turned about z.
    c, s = np.cos(0.7), np.sin(0.7)
    u, v = (xb + 85.0) * c + (yb + 45.0) * s, -(xb + 85.0) * s + (yb + 45.0) * c
    spleen = inner & ((u / 22.0) ** 2 + (v / 55.0) ** 2 + ((zb + 115.0) / 45.0) ** 2 <= 1.0)
    cv.paint(sl, spleen, HU_SPLEEN, LABEL_IDS["spleen"])
    # Stomach: left upper quadrant with gas in its non-dependent (anterior) part, fluid below.
    e = ((xb + 55.0) / 45.0) ** 2 + ((yb - 10.0) / 42.0) ** 2 + ((zb + 105.0) / 55.0) ** 2
    stomach = inner & (e <= 1.0)
    content = np.where(e > 0.8, 40.0, np.where((yb > 0.0) & (zb > -88.0), HU_AIR, 15.0)).astype(np.float32)
    cv.paint(sl, stomach, content, LABEL_IDS["stomach"])
    # Kidneys: upper poles at the bottom of the field of view.
    for name, side, top in (("kidney_right", 1.0, -190.0), ("kidney_left", -1.0, -182.0)):
        kidney = wall[sl] & (
            ((xb - side * 62.0) / 28.0) ** 2 + ((yb + 62.0) / 26.0) ** 2 + ((zb - top) / 55.0) ** 2 <= 1
        )
        cv.paint(sl, kidney, HU_KIDNEY, LABEL_IDS[name])


def paint_muscles(cv: Canvas, level: np.ndarray) -> None:
    """Pectoralis major (anterior chest wall) and the autochthonous back muscles (paraspinal)."""
    found = cv.box((-170, 0, 0), (170, 120, 150))
    sl, xb, yb, zb = found
    muscle_layer = level[sl] >= 3
    cage_r = cage_scale(zb) * cage_radius(np.arctan2(np.abs(xb), CAGE_CY - yb))
    outside_cage = np.hypot(xb, yb - CAGE_CY) > cage_r + 5.0
    lower = 40.0 + 0.55 * np.clip(np.abs(xb) - 40.0, 0.0, None)  # inferior border rising to the axilla
    pect = muscle_layer & outside_cage & (np.abs(xb) > 14.0) & (zb > lower) & (zb < 140.0) & (np.abs(xb) < 150.0)
    cv.paint(sl, pect & (xb < 0), HU_MUSCLE, LABEL_IDS["pectoralis_major_left"])
    cv.paint(sl, pect & (xb >= 0), HU_MUSCLE, LABEL_IDS["pectoralis_major_right"])

    found = cv.box((-75, -135, -180), (75, -50, 180))
    sl, xb, yb, zb = found
    muscle_layer = level[sl] >= 3
    y_spine = spine_y(zb) - 12.0
    cage_r = cage_scale(zb) * cage_radius(np.arctan2(np.abs(xb), CAGE_CY - yb))
    outside_cage = np.hypot(xb, yb - CAGE_CY) > cage_r + 5.0
    back = muscle_layer & (yb < y_spine) & (np.abs(xb) > 4.0) & (np.abs(xb) < 62.0) & outside_cage
    cv.paint(sl, back & (xb < 0), HU_MUSCLE, LABEL_IDS["autochthon_left"])
    cv.paint(sl, back & (xb >= 0), HU_MUSCLE, LABEL_IDS["autochthon_right"])


def paint_spine(cv: Canvas, levels: list[dict]) -> None:
    for lv in levels:
        zc, h, rx, ry, yc_body = lv["z"], lv["height"], lv["rx"], lv["ry"], lv["y"]
        canal_r = 9.5 if lv["lumbar"] or lv["name"] == "C7" else 8.0
        y_canal = yc_body - ry - canal_r - 1.0
        found = cv.box((-rx - 36, y_canal - 45, zc - h / 2 - 24), (rx + 36, yc_body + ry + 2, zc + h / 2 + 1))
        sl, xb, yb, zb = found
        label = LABEL_IDS[f"vertebrae_{lv['name']}"]
        # Vertebral body: cortical shell and endplates around cancellous bone.
        e = np.sqrt((xb / rx) ** 2 + ((yb - yc_body) / ry) ** 2)
        dzc = np.abs(zb - zc)
        body = (e <= 1.0) & (dzc <= h / 2)
        cortex = (e > 1.0 - 1.2 / ry) | (dzc > h / 2 - 1.2)
        cv.paint(sl, body, np.where(cortex, HU_CORTEX, HU_CANCELLOUS).astype(np.float32), label)
        # Posterior elements: pedicles, laminae, spinous process, transverse processes.
        rr = np.hypot(xb, yb - y_canal)
        zmid = zc + 0.1 * h
        pedicle = (np.abs(np.abs(xb) - (canal_r + 2.5)) <= 4.0) & (yb <= yc_body - ry * 0.5) & (yb >= y_canal)
        pedicle = pedicle & (np.abs(zb - zmid) <= 0.32 * h)
        lamina = (rr >= canal_r) & (rr <= canal_r + 5.5) & (yb <= y_canal + 1.0) & (np.abs(zb - zc) <= 0.45 * h)
        slope = 0.25 if (lv["lumbar"] or lv["name"] == "C7") else 0.75
        reach = 26.0 if lv["lumbar"] else 25.0
        y0 = y_canal - canal_r
        z_spine = zc + slope * np.clip(yb - y0, -reach, 0.0)
        spinous = (np.abs(xb) <= 3.0) & (yb <= y0 + 2) & (yb >= y0 - reach) & (np.abs(zb - z_spine) <= 4.5)
        tip_x = rx + (30.0 if lv["lumbar"] else 22.0)
        transverse = np.zeros_like(spinous)
        for side in (-1.0, 1.0):
            p0 = (side * (canal_r + 3.0), y_canal + 2.0, zc + 1.0)
            p1 = (side * tip_x, y_canal - (2.0 if lv["lumbar"] else 10.0), zc + 3.0)
            transverse |= segment_distance(xb, yb, zb, p0, p1) <= (4.0 if lv["lumbar"] else 5.0)
        posterior = (pedicle | lamina | spinous | transverse) & ~body
        cv.paint(sl, posterior, HU_POSTERIOR_ELEMENTS, label)
        # Disc below this vertebra.
        zd = zc - lv["pitch"] / 2.0
        disc = ((xb / rx) ** 2 + ((yb - yc_body) / ry) ** 2 <= 1.0) & (np.abs(zb - zd) <= lv["disc"] / 2.0)
        cv.paint(sl, disc, HU_DISC, LABEL_IDS["intervertebral_discs"])


def paint_ribs(cv: Canvas, tubes: Tubes, levels: list[dict]) -> None:
    ribs, cartilages = rib_paths(levels)
    for points, rn, rm, normals, label in ribs:
        tubes.add(points, rn, label, radius_m=rm, normals=normals)
    tubes.flush(lambda rho, lab: np.where(rho > 0.6, HU_RIB_CORTEX, HU_CANCELLOUS).astype(np.float32))
    for points, rn, rm, normals in cartilages:
        tubes.add(points, rn, LABEL_IDS["costal_cartilages"], radius_m=rm, normals=normals)
    tubes.flush(lambda rho, lab: np.where(rho > 0.7, HU_CARTILAGE + 60.0, HU_CARTILAGE).astype(np.float32))


def paint_sternum(cv: Canvas) -> None:
    found = cv.box((-32, 40, -50), (32, 125, 135))
    sl, xb, yb, zb = found
    front = CAGE_CY + cage_scale(zb) * cage_radius(np.pi) + 4.0
    half_width = np.interp(zb, [-48, -20, -10, 88, 95, 100, 130, 134], [5, 8, 14, 16, 20, 27, 24, 18])
    half_depth = np.interp(zb, [-48, -20, -10, 95, 100, 134], [2.5, 3, 6, 6, 8, 8])
    e = np.sqrt((xb / half_width) ** 2 + ((yb - front) / half_depth) ** 2)
    sternum = (e <= 1.0) & (zb >= -48) & (zb <= 134)
    cv.paint(sl, sternum, np.where(e > 0.65, HU_CORTEX, HU_CANCELLOUS + 40).astype(np.float32), LABEL_IDS["sternum"])


def paint_clavicles(tubes: Tubes) -> None:
    for side in (-1.0, 1.0):
        template = [(20, 72, 128), (45, 80, 133), (80, 74, 139), (112, 52, 145), (140, 20, 150), (158, -6, 151)]
        knots = np.array([(side * kx, ky, kz) for kx, ky, kz in template], dtype=np.float64)
        path = smooth_curve(knots, 40)
        radius = np.interp(np.linspace(0, 1, 40), [0, 0.15, 0.8, 1], [10.0, 8.0, 7.0, 8.0])
        tubes.add(path, radius, LABEL_IDS[f"clavicula_{'left' if side < 0 else 'right'}"])
    tubes.flush(lambda rho, lab: np.where(rho > 0.6, HU_RIB_CORTEX, HU_CANCELLOUS).astype(np.float32))


def paint_scapulae(cv: Canvas, tubes: Tubes) -> None:
    """Thin triangular plates on the posterior cage, with a thick lateral border, spine and glenoid."""
    for side in (-1.0, 1.0):
        lo = (40.0, -140.0, 10.0) if side > 0 else (-172.0, -140.0, 10.0)
        hi = (172.0, 10.0, 160.0) if side > 0 else (-40.0, 10.0, 160.0)
        found = cv.box(lo, hi)
        sl, xb, yb, zb = found
        phi = np.arctan2(np.abs(xb), CAGE_CY - yb)
        r = np.hypot(xb, yb - CAGE_CY)
        surface = cage_scale(np.clip(zb, None, 100.0)) * cage_radius(phi) + 13.0
        deg = np.rad2deg(phi)
        # Triangle in (phi, z): medial border ~35 deg, superior border ~132 mm, lateral border to the glenoid.
        medial = deg >= 33.0 + 0.04 * (132.0 - zb)
        superior = zb <= 132.0 - 0.15 * (deg - 33.0)
        lateral = deg <= 40.0 + (zb - 18.0) * (42.0 / 110.0)
        inferior = zb >= 18.0
        plate = medial & superior & lateral & inferior
        lateral_edge = np.abs(deg - (40.0 + (zb - 18.0) * (42.0 / 110.0))) < 5.0
        thickness = np.where(lateral_edge, 5.0, 2.0)
        blade = plate & (np.abs(r - surface) <= thickness)
        label = LABEL_IDS[f"scapula_{'left' if side < 0 else 'right'}"]
        cv.paint(sl, blade, np.where(lateral_edge, HU_CORTEX, 500.0).astype(np.float32), label)
        # Spine of the scapula and acromion (toward the clavicle), glenoid (lateral, facing the arm).
        spine_knots = np.array(
            [(side * 72, -100, 118), (side * 110, -92, 124), (side * 145, -60, 138), (side * 162, -22, 148)]
        )
        tubes.add(smooth_curve(spine_knots, 24), np.linspace(5.0, 6.5, 24), label)
        glenoid = np.array([(side * 135, -40, 118), (side * 150, -32, 122)])
        tubes.add(glenoid, np.array([11.0, 13.0]), label)
    tubes.flush(lambda rho, lab: np.where(rho > 0.6, HU_CORTEX, HU_CANCELLOUS + 60).astype(np.float32))


def paint_heart(cv: Canvas) -> None:
    found = cv.box((-120, -50, -80), (80, 100, 50))
    sl, xb, yb, zb = found
    axis = np.array([-0.8, 0.38, -0.45])
    axis /= np.linalg.norm(axis)
    side = np.cross(axis, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    up = np.cross(side, axis)
    cx, cy, cz = -30.0, 18.0, -20.0
    dx, dy, dz = xb - cx, yb - cy, zb - cz
    u = dx * axis[0] + dy * axis[1] + dz * axis[2]
    v = dx * side[0] + dy * side[1] + dz * side[2]
    w = dx * up[0] + dy * up[1] + dz * up[2]
    e = (u / 66.0) ** 2 + (v / 50.0) ** 2 + (w / 46.0) ** 2
    atrium = ((xb - 20.0) / 28.0) ** 2 + ((yb - 2.0) / 30.0) ** 2 + ((zb + 12.0) / 36.0) ** 2
    e = np.minimum(e, atrium)
    floor = diaphragm_z(xb[:, :, 0], yb[:, :, 0])[:, :, None] - 2.0
    heart = (e <= 1.0) & (zb > floor)
    fat = (e <= 1.15) & (zb > floor) & ~heart
    cv.paint(sl, fat, HU_FAT + 10.0, 0)
    cv.paint(sl, heart, HU_BLOOD, LABEL_IDS["heart"])


def paint_vessels_and_airways(tubes: Tubes) -> None:
    aorta = smooth_curve(
        [
            (2, 12, 5),
            (10, 16, 40),
            (10, 10, 72),
            (0, -2, 96),
            (-18, -20, 98),
            (-28, -32, 84),
            (-27, -35, 55),
            (-22, -33, 0),
            (-14, -24, -60),
            (-6, -14, -120),
            (-4, -12, -185),
        ],
        48,
    )
    radius = np.interp(np.linspace(0, 1, 48), [0, 0.2, 0.35, 0.5, 1.0], [15, 15, 13, 12, 10])
    tubes.add(aorta, radius, LABEL_IDS["aorta"])
    tubes.add(smooth_curve([(4, 2, 96), (14, 4, 125), (22, 6, 180)], 20), 6.5, LABEL_IDS["brachiocephalic_trunk"])
    tubes.add(
        smooth_curve([(-8, -6, 99), (-12, -4, 140), (-16, -2, 180)], 20), 4.5, LABEL_IDS["common_carotid_artery_left"]
    )
    tubes.add(
        smooth_curve([(-20, -18, 99), (-35, -14, 135), (-70, -8, 152), (-120, -12, 150)], 24),
        5.0,
        LABEL_IDS["subclavian_artery_left"],
    )
    pa = LABEL_IDS["pulmonary_artery"]
    tubes.add(smooth_curve([(-12, 34, 15), (-20, 28, 42), (-12, 8, 58)], 20), 13.0, pa)
    tubes.add(smooth_curve([(-12, 8, 58), (-38, -2, 52), (-60, -8, 44)], 20), 10.0, pa)
    tubes.add(smooth_curve([(-12, 8, 58), (15, 0, 55), (40, -6, 46), (56, -8, 40)], 24), 10.0, pa)
    tubes.add(smooth_curve([(30, 10, 130), (30, 9, 70), (25, 8, 18)], 24), 10.0, LABEL_IDS["superior_vena_cava"])
    tubes.add(smooth_curve([(20, -8, -185), (20, -4, -90), (20, 2, -40)], 24), 11.0, LABEL_IDS["inferior_vena_cava"])
    tubes.flush(lambda rho, lab: np.full(rho.shape, HU_BLOOD, np.float32))
    # Airways: air lumen inside a soft-tissue wall.
    trachea = LABEL_IDS["trachea"]
    tubes.add(smooth_curve([(4, -8, 185), (4, -8, 120), (1, -6, 66)], 30), 10.0, trachea)
    tubes.add(smooth_curve([(1, -6, 66), (24, -8, 55), (48, -10, 44)], 20), np.linspace(7, 5.5, 20), trachea)
    tubes.add(smooth_curve([(1, -6, 66), (-26, -8, 58), (-52, -10, 44)], 20), np.linspace(6.5, 5.0, 20), trachea)
    tubes.flush(lambda rho, lab: np.where(rho > 0.8, HU_SOFT, HU_AIR).astype(np.float32))
    esophagus = smooth_curve([(-4, -27, 185), (-6, -28, 60), (-12, -24, -50), (-30, -8, -90)], 40)
    tubes.add(esophagus, 7.0, LABEL_IDS["esophagus"])
    tubes.flush(lambda rho, lab: np.where(rho < 0.25, -700.0, HU_SOFT).astype(np.float32))


def paint_pulmonary_vessels(cv: Canvas, tubes: Tubes, rng: np.random.Generator) -> None:
    """A random branching vessel tree from each hilum, kept inside the lungs (lung markings)."""
    lungs = {LABEL_IDS["lung_left"], LABEL_IDS["lung_right"]}
    origin = np.array([(n - 1) / 2.0 for n in GRID_SHAPE])
    spacing = np.array(SPACING)

    def in_lung(p: np.ndarray) -> bool:
        index = np.round(p / spacing + origin).astype(int)
        if np.any(index < 0) or np.any(index >= GRID_SHAPE):
            return False
        return int(cv.lab[tuple(index)]) in lungs

    roots = []
    for side, hilum in ((1.0, (50.0, -8.0, 42.0)), (-1.0, (-56.0, -8.0, 40.0))):
        for direction in (
            (0.3, 0.1, 1.0),
            (1.0, 0.2, 0.4),
            (1.0, 0.3, -0.3),
            (0.6, -0.6, -0.8),
            (0.4, 0.5, -0.9),
            (0.3, -0.9, 0.2),
        ):
            d = np.array([side * direction[0], direction[1], direction[2]])
            roots.append((np.array(hilum), d / np.linalg.norm(d), 4.5))
    stack = [(p, d, r, 0) for p, d, r in roots]
    while stack:
        p, d, r, depth = stack.pop()
        length = float(np.clip(r * 7.0, 7.0, 28.0)) * rng.uniform(0.8, 1.2)
        q = p + d * length
        if depth > 0 and not in_lung(q):
            continue
        tubes.add(np.stack([p, q]), np.array([r, r * 0.9]), 1)  # label unused: the lung label is kept
        if r < 0.9 or depth >= 9:
            continue
        perp = np.cross(d, rng.normal(size=3))
        perp /= np.linalg.norm(perp)
        for sign in (1.0, -1.0):
            angle = rng.uniform(0.35, 0.7)
            child = d * np.cos(angle) + sign * perp * np.sin(angle)
            stack.append((q, child / np.linalg.norm(child), r * rng.uniform(0.68, 0.8), depth + 1))
    lung_ids = np.array(sorted(lungs), dtype=np.uint8)
    tubes.flush(
        lambda rho, lab: np.full(rho.shape, HU_BLOOD, np.float32),
        keep_label=True,
        where=lambda sl: np.isin(cv.lab[sl], lung_ids),
    )


def paint_spinal_canal(tubes: Tubes, levels: list[dict]) -> None:
    z = np.linspace(185.0, -185.0, 40)
    ry = np.interp(z, [lv["z"] for lv in levels[::-1]], [lv["ry"] for lv in levels[::-1]])
    canal_r = np.where((z > 160) | (z < -125), 9.5, 8.0)
    y = spine_y(z) - ry - canal_r - 1.0
    tubes.add(np.stack([np.zeros_like(z), y, z], axis=1), canal_r, LABEL_IDS["spinal_cord"])
    tubes.flush(lambda rho, lab: np.where(rho < 0.55, 35.0, 10.0).astype(np.float32))
