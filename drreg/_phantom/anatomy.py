"""Anatomy of the example chest phantom: the structure table, Hounsfield units and where each part lies.

Tables of knots (mm) and the analytic curves through them: the body outline, the rib cage, the diaphragm, the
spine and the ribs. Nothing here touches voxels; :mod:`drreg._phantom.painters` paints these shapes.

Convention: world frame RAS+ in mm (x toward the patient's right, y anterior, z superior).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "STRUCTURES",
    "LABEL_IDS",
    "VERTEBRAE",
    "cage_point",
    "cage_radius",
    "cage_scale",
    "diaphragm_z",
    "rib_paths",
    "spine_y",
    "vertebra_levels",
]

VERTEBRAE = ["C7"] + [f"T{i}" for i in range(1, 13)] + ["L1", "L2"]
STRUCTURES: list[tuple[str, str]] = (
    [
        ("skeleton", "clavicula_left"),
        ("skeleton", "clavicula_right"),
        ("skeleton", "scapula_left"),
        ("skeleton", "scapula_right"),
        ("skeleton", "sternum"),
        ("skeleton", "costal_cartilages"),
    ]
    + [("ribs", f"rib_left_{k}") for k in range(1, 13)]
    + [("ribs", f"rib_right_{k}") for k in range(1, 13)]
    + [("vertebrae", f"vertebrae_{name}") for name in VERTEBRAE]
    + [("vertebrae", "intervertebral_discs")]
    + [
        ("cardiac", "heart"),
        ("cardiac", "aorta"),
        ("cardiac", "pulmonary_artery"),
        ("cardiac", "superior_vena_cava"),
        ("cardiac", "inferior_vena_cava"),
        ("cardiac", "brachiocephalic_trunk"),
        ("cardiac", "common_carotid_artery_left"),
        ("cardiac", "subclavian_artery_left"),
        ("organs", "lung_left"),
        ("organs", "lung_right"),
        ("organs", "trachea"),
        ("organs", "esophagus"),
        ("organs", "liver"),
        ("organs", "stomach"),
        ("organs", "spleen"),
        ("organs", "kidney_left"),
        ("organs", "kidney_right"),
        ("organs", "spinal_cord"),
        ("muscles", "pectoralis_major_left"),
        ("muscles", "pectoralis_major_right"),
        ("muscles", "autochthon_left"),
        ("muscles", "autochthon_right"),
    ]
)
LABEL_IDS = {name: index + 1 for index, (_, name) in enumerate(STRUCTURES)}

# Hounsfield units.
HU_AIR, HU_LUNG, HU_FAT, HU_SKIN, HU_MUSCLE, HU_SOFT = -1000.0, -860.0, -100.0, 30.0, 48.0, 35.0
HU_BLOOD, HU_LIVER, HU_SPLEEN, HU_KIDNEY, HU_DISC, HU_CARTILAGE = 40.0, 60.0, 48.0, 32.0, 85.0, 150.0
HU_CORTEX, HU_RIB_CORTEX, HU_CANCELLOUS, HU_POSTERIOR_ELEMENTS = 1000.0, 1150.0, 220.0, 420.0

# Body outline: a superellipse per slice, |x/a|^n + |y/b|^n <= 1 (b anterior or posterior), knots in z (mm).
BODY_N = 2.6
BODY_Z = [-175.0, -100.0, -40.0, 40.0, 110.0, 140.0, 155.0, 175.0]
BODY_A = [150.0, 155.0, 160.0, 163.0, 167.0, 170.0, 165.0, 135.0]
BODY_B_ANT = [108.0, 112.0, 113.0, 112.0, 102.0, 96.0, 88.0, 70.0]
BODY_B_POST = [118.0, 120.0, 122.0, 122.0, 122.0, 120.0, 117.0, 110.0]

# Rib cage: polar curve around (0, CAGE_CY); phi is the angle from the posterior midline (0) to the
# anterior midline (pi). The posterior dent wraps the ribs toward the spine (paravertebral gutters).
CAGE_CY = 0.0
_CAGE_A, _CAGE_B_ANT, _CAGE_B_POST = 140.0, 92.0, 100.0
_DENT, _DENT_WIDTH = 0.5, np.deg2rad(28.0)
CAGE_Z = [-180.0, -140.0, -110.0, 0.0, 30.0, 55.0, 80.0, 104.0, 128.0, 150.0, 165.0, 180.0]
CAGE_S = [0.94, 0.98, 1.0, 1.0, 0.98, 0.95, 0.9, 0.83, 0.7, 0.52, 0.4, 0.3]
LUNG_GAP = 7.0  # mm from the rib centreline to the lung surface


def cage_radius(phi: np.ndarray | float) -> np.ndarray:
    """Rib-cage radius (mm, at scale 1) for angles ``phi`` from the posterior midline (radians)."""
    b = np.where(np.cos(phi) > 0, _CAGE_B_POST, _CAGE_B_ANT)
    radius = 1.0 / np.sqrt((np.sin(phi) / _CAGE_A) ** 2 + (np.cos(phi) / b) ** 2)
    return radius * (1.0 - _DENT * np.exp(-((phi / _DENT_WIDTH) ** 4)))


def cage_scale(z: np.ndarray | float) -> np.ndarray | np.float64:
    return np.interp(z, CAGE_Z, CAGE_S)


def cage_point(phi: np.ndarray, z: np.ndarray, side: float, offset: float = 0.0) -> np.ndarray:
    """World points (N, 3) on the cage surface (plus ``offset`` mm outward) at angles ``phi`` and heights ``z``."""
    radius = cage_scale(z) * cage_radius(phi) + offset
    return np.stack([side * radius * np.sin(phi), CAGE_CY - radius * np.cos(phi), z], axis=1)


def diaphragm_z(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height (mm) of the diaphragm under each (x, y): two domes (the right one higher) and the central tendon."""
    back = np.clip(5.0 - y, 0.0, None) ** 2 / 80.0 + np.clip(y - 5.0, 0.0, None) ** 2 / 200.0
    right = -36.0 - (x - 50.0) ** 2 / 110.0 - back
    left = -50.0 - (x + 58.0) ** 2 / 110.0 - back
    centre = -64.0 - (x + 5.0) ** 2 / 400.0 - np.clip(-y - 10.0, 0.0, None) ** 2 / 80.0
    return np.maximum(np.maximum(np.maximum(right, left), centre), -150.0)


def spine_y(z):
    """Centre (y, mm) of the vertebral bodies at height z: a mild thoracic kyphosis."""
    return -42.0 - 6.0 * np.sin(np.pi * np.clip((np.asarray(z) + 150.0) / 330.0, 0.0, 1.0))


def vertebra_levels() -> list[dict]:
    """Centre height, pitch and body size of each vertebra, from C7 to L2."""
    pitch = {"C7": 19.0, "L1": 31.0, "L2": 32.0}
    for i in range(1, 13):
        pitch[f"T{i}"] = 21.0 + (i - 1) * 6.0 / 11.0
    levels: list[dict] = []
    z = 150.0 + (pitch["C7"] + pitch["T1"]) / 2.0
    for name in VERTEBRAE:
        if name != "C7":
            z -= (levels[-1]["pitch"] + pitch[name]) / 2.0
        t = (VERTEBRAE.index(name)) / (len(VERTEBRAE) - 1)
        lumbar = name.startswith("L")
        disc = 9.0 if lumbar else 5.0
        levels.append(
            {
                "name": name,
                "z": z,
                "pitch": pitch[name],
                "height": pitch[name] - disc,
                "disc": disc,
                "rx": 13.0 + 11.0 * t,
                "ry": 11.0 + 7.0 * t,
                "y": float(spine_y(z)),
                "lumbar": lumbar,
            }
        )
    return levels


def rib_paths(levels: list[dict]):
    """Centreline, radii and outward normals of each rib, and the costal cartilage paths (world mm)."""
    by_name = {lv["name"]: lv for lv in levels}
    phi_start = np.deg2rad(18.0)
    drops = [34, 48, 60, 72, 80, 86, 88, 86, 78, 66, 44, 26]
    ends = [150, 152, 152, 152, 152, 150, 147, 140, 130, 118, 100, 76]
    sternal_z = [125, 100, 78, 58, 38, 18, 0, -12, -26, -40]
    ribs, cartilages = [], []
    rise_phi = np.deg2rad([0, 25, 45, 70, 95, 125, 155, 180])
    rise = np.array([0.0, 0.08, 0.08, -0.05, -0.22, -0.55, -0.88, -1.0])
    for k in range(1, 13):
        lv = by_name[f"T{k}"]
        z_head = lv["z"] + 0.3 * lv["pitch"]
        phi_end = np.deg2rad(ends[k - 1])
        phi = np.linspace(phi_start, phi_end, 36)
        z = z_head + drops[k - 1] * np.interp(phi, rise_phi, rise) / 1.0
        width = 1.0 if k > 1 else 1.5  # the first rib is broad and flat
        rn = np.full_like(phi, 3.8)
        rm = np.interp(phi, np.deg2rad([0, 30, 60, 180]), [4.2, 5.5, 6.5 * width, 7.0 * width])
        for side in (-1.0, 1.0):
            points = cage_point(phi, z, side)
            normals = np.stack([np.sin(phi) * side, -np.cos(phi), np.zeros_like(phi)], axis=1)
            name = f"rib_{'left' if side < 0 else 'right'}_{k}"
            ribs.append((points, rn, rm, normals, LABEL_IDS[name]))
            if k <= 10:
                # Costal cartilage from the bony end toward the sternum (ribs 8-10 join the cartilage above).
                z_end = z[-1]
                phi_to = np.deg2rad(173.0 if k <= 7 else 168.0 - 8.0 * (k - 7))
                pc = np.linspace(phi_end, phi_to, 16)
                w = np.linspace(0.0, 1.0, 16)
                zc = z_end + (sternal_z[k - 1] - z_end) * (w**1.6)
                points_c = cage_point(pc, zc, side, offset=-1.0)
                normals_c = np.stack([np.sin(pc) * side, -np.cos(pc), np.zeros_like(pc)], axis=1)
                cartilages.append((points_c, np.full(16, 3.0), np.full(16, 5.0), normals_c))
    return ribs, cartilages
