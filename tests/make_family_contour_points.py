"""Generate tests/data/family_contour_points.json: reference points where the real-axis rule of
the general path fails and the power-law contour is needed (high T, fast textures).

Usage (from the repository root)::

    python tests/make_family_contour_points.py

Each point is computed by the independent slow reference tests/family_reference.py at its
default settings (no self-check rerun: the reference's self-accuracy is documented in the
header of tests/data/family_points.json). Points: T = 0.2-0.3, |V| up to 2, |mu0| up to 1,
textures PowerLaw(0.8, 3) (the case the real-axis rule got wrong by 1.6e-3 in dG), exponents
1.5 and 4, scales 0.5 and 2, the paper's texture gated; the Dirac point inside the window, at
a Fermi edge and inside a tail. Full exchange tensors from a seeded RNG (entries uniform in
[-0.6, 0.6]). The file is rewritten after every point (the costliest, exponent 4 at T = 0.3,
takes ~10 min on one core).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family_reference as fr  # noqa: E402

OUT = Path(__file__).resolve().parent / "data" / "family_contour_points.json"
SEED = 20261202
# (S, texture (scale, exponent), T, V, mu0), cheapest first
SPECS = [
    (0.5, (1.0, 1.5), 0.3, 1.0, 1.0),  # Dirac point in the left tail
    (1.0, (1.0, 1.5), 0.3, -2.0, -0.7),
    (1.5, (2.0, 2.0), 0.3, 0.5, -1.0),  # Dirac point in the right tail
    (1.0, (1.0, 2.0), 0.3, 2.0, 0.8),
    (0.5, (1.0, 2.0), 0.3, -1.0, -1.0),  # Dirac point at the right Fermi edge
    (0.5, (0.5, 2.0), 0.3, -2.0, 1.0),  # Dirac point at the left Fermi edge
    (1.5, (0.8, 3.0), 0.3, 2.0, 0.8),  # the point the real-axis rule got wrong
    (1.0, (0.8, 3.0), 0.3, -1.5, -0.6),
    (0.5, (0.8, 3.0), 0.3, 0.6, 0.9),  # Dirac point in the left tail, kink of |eps|^3
    (1.0, (1.0, 4.0), 0.2, -1.0, 0.5),
    (1.5, (1.0, 4.0), 0.3, 2.0, 0.8),
]


def main() -> None:
    rng = np.random.default_rng(SEED)
    couplings = [rng.uniform(-0.6, 0.6, (3, 3)) for _ in SPECS]
    points = []
    for (S, (scale, p), T, V, mu0), J in zip(SPECS, couplings, strict=True):
        t0 = time.perf_counter()
        r = fr.point(S, J, T, V, mu0, fr.PowerLaw(scale, p))
        points.append(
            {
                "S": S,
                "J": [[float(x) for x in row] for row in J],
                "T": T,
                "V": V,
                "mu0": mu0,
                "texture": {"kind": "power_law", "scale": scale, "exponent": p},
                "current": r["current"],
                "conductance": r["conductance"],
                "conductance_err": r["conductance_err"],
                "spin": [float(x) for x in r["spin"]],
                "rho": [[[float(z.real), float(z.imag)] for z in row] for row in r["rho"]],
                "panels": r["panels"],
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        header = {
            "generator": "tests/make_family_contour_points.py (reference "
            "tests/family_reference.py, default settings)",
            "seed": SEED,
            "settings": fr.SETTINGS,
        }
        text = fr.points_json(header, points)
        OUT.write_text(text)
        print(
            f"{len(points)}/{len(SPECS)} S={S} {scale},{p} T={T} V={V} mu0={mu0} "
            f"G={r['conductance']:.15e} {points[-1]['seconds']} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
