"""Render the figures of docs/physics.md with drreg.physics itself, on the embedded example CT.

Run from the repository root after a change to drreg/physics (the PNGs are committed, well under 150 kB each):

    .venv/bin/python docs/scripts/physics_figures.py

It writes docs/images/physics_{drr_vs_xray,kvp,scatter,bone_scale,noise,spectra,beam_hardening}.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from drreg import DRR, load_example_ct  # noqa: E402
from drreg.physics import PhysicsDRR, XRayPhysics, mass_attenuation, tube_spectrum  # noqa: E402

SDD = 1020.0
HEIGHT = 200
DELX = 2.0
ROTATION = torch.zeros(1, 3)  # AP: ZXY Euler angles (rad)
TRANSLATION = torch.tensor([[0.0, 850.0, 0.0]])  # mm
POSE_KWARGS = {"parameterization": "euler_angles", "convention": "ZXY"}
OUT = Path(__file__).resolve().parents[1] / "images"
DPI = 80


def _save(fig: plt.Figure, name: str) -> None:
    path = OUT / name
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pil_kwargs={"optimize": True})
    plt.close(fig)
    print(f"{path}: {path.stat().st_size // 1024} kB")


def _xray(subject, **kwargs) -> np.ndarray:
    """The negative-log X-ray of the AP view; ``kwargs`` split between XRayPhysics and PhysicsDRR."""
    drr_keys = {"bone_scale", "decomposition"}
    physics = XRayPhysics(output="negative_log", **{k: v for k, v in kwargs.items() if k not in drr_keys})
    drr_kwargs = {k: v for k, v in kwargs.items() if k in drr_keys}
    xray = PhysicsDRR(subject, sdd=SDD, height=HEIGHT, delx=DELX, physics=physics, **drr_kwargs)
    with torch.no_grad():
        image = xray(ROTATION, TRANSLATION, generator=torch.Generator().manual_seed(0), **POSE_KWARGS)
    return image[0, 0].numpy()


def _row(images: list[np.ndarray], titles: list[str], name: str, shared_scale: bool = True) -> None:
    fig, axs = plt.subplots(1, len(images), figsize=(3.2 * len(images), 3.5), tight_layout=True)
    vmin, vmax = min(float(i.min()) for i in images), max(float(i.max()) for i in images)
    for ax, image, title in zip(axs, images, titles):
        scale = {"vmin": vmin, "vmax": vmax} if shared_scale else {}
        ax.imshow(image, cmap="gray", **scale)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    _save(fig, name)


def drr_vs_xray(subject) -> None:
    """The plain DRR (line integral of the density) beside the simulated 80 kVp X-ray (negative log)."""
    drr = DRR(subject, sdd=SDD, height=HEIGHT, delx=DELX)
    with torch.no_grad():
        plain = drr(ROTATION, TRANSLATION, **POSE_KWARGS)[0, 0].numpy()
    xray = _xray(subject, kvp=80.0)
    _row([plain, xray], ["plain DRR (drreg.DRR)", "X-ray, 80 kVp: -log(I / I_air)"], "physics_drr_vs_xray.png", False)


def kvp(subject) -> None:
    """60, 80 and 120 kVp on one grey scale: higher voltage, less attenuation and less bone contrast."""
    images = [_xray(subject, kvp=k) for k in (60.0, 80.0, 120.0)]
    _row(images, [f"{k:.0f} kVp" for k in (60, 80, 120)], "physics_kvp.png")


def scatter(subject) -> None:
    """Scatter-to-primary ratio 0, 0.3 and 1 (40 mm kernel): scatter lifts the dark regions and washes out contrast."""
    images = [_xray(subject, scatter_to_primary=spr) for spr in (0.0, 0.3, 1.0)]
    _row(images, [f"SPR {spr:g}" for spr in (0.0, 0.3, 1.0)], "physics_scatter.png")


def bone_scale(subject) -> None:
    """Bone density times 1 and times 2."""
    images = [_xray(subject, bone_scale=s) for s in (1.0, 2.0)]
    _row(images, [f"bone_scale {s:g}" for s in (1.0, 2.0)], "physics_bone_scale.png")


def noise(subject) -> None:
    """Quantum noise: no noise, then Poisson noise at 10⁴ and 10³ photons per pixel in air (0.6 mm CsI detector)."""
    images = [_xray(subject), _xray(subject, noise="poisson"), _xray(subject, noise="poisson", photons_per_pixel=1e3)]
    titles = ["no noise", "Poisson, 10⁴ photons / pixel", "Poisson, 10³ photons / pixel"]
    _row(images, titles, "physics_noise.png")


def spectra() -> None:
    """Tube spectra of the committed SpekPy table, 2.5 mm Al, photons per keV per mAs at 1 m."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8), tight_layout=True)
    for k in (60, 80, 100, 120, 150):
        spectrum = tube_spectrum(k)
        label = f"{k} kVp: mean {spectrum.mean_energy_kev:.1f} keV, HVL {spectrum.half_value_layer():.2f} mm Al"
        ax.plot(spectrum.energies_kev.numpy(), spectrum.fluence.numpy() / 1e6, label=label)
    ax.set_xlabel("photon energy (keV)")
    ax.set_ylabel("fluence (10⁶ photons / (cm² mAs keV) at 1 m)")
    ax.set_xlim(0, 152)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, "physics_spectra.png")


def beam_hardening() -> None:
    """Effective attenuation -log(T)/t of soft tissue and bone against thickness: it falls as the beam hardens."""
    thickness_mm = torch.logspace(-1, np.log10(300.0), 60, dtype=torch.float64)
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.8), tight_layout=True)
    for ax, material, density in zip(axs, ("soft_tissue", "bone"), (1.0, 1.92)):
        for k in (60, 80, 120):
            physics = XRayPhysics(kvp=k, materials=(material,), output="negative_log")
            with torch.no_grad():
                log = physics((density * thickness_mm).view(1, 1, 1, -1))[0, 0, 0]
            line = ax.plot(thickness_mm.numpy(), (log / thickness_mm * 10.0).numpy(), label=f"{k} kVp")[0]
            mu = float(mass_attenuation(material, [tube_spectrum(k).mean_energy_kev])[0]) * density
            ax.axhline(mu, color=line.get_color(), ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("thickness (mm)")
        ax.set_ylabel("effective μ = -log(I / I_air) / t  (1/cm)")
        ax.set_title(f"{material.replace('_', ' ')} at {density:g} g/cm³ (dotted: μ at the mean energy)", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    _save(fig, "physics_beam_hardening.png")


FIGURES = {"drr_vs_xray": drr_vs_xray, "kvp": kvp, "scatter": scatter, "bone_scale": bone_scale, "noise": noise}
PLOTS = {"spectra": spectra, "beam_hardening": beam_hardening}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[*FIGURES, *PLOTS], help="write only these figures")
    names = parser.parse_args().only or [*FIGURES, *PLOTS]
    OUT.mkdir(parents=True, exist_ok=True)
    subject = load_example_ct() if any(name in FIGURES for name in names) else None
    for name in names:
        FIGURES[name](subject) if name in FIGURES else PLOTS[name]()


if __name__ == "__main__":
    main()
