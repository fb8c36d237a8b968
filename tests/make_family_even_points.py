"""Generate tests/data/family_even_points.json: reference points for the even contour
(jaxmi.family.even_coefficients) with its spin-half-2x2 solve: S = 1/2, diagonal exchange,
theta = (eps/s)^2 with s in {0.5, 1, 2}, mu0 in [-1, 1] (the Dirac point inside the bias window,
at an edge and outside it), T in [0.005, 0.3], |V| <= 2, V = 0 included (the reference cannot
take T = 0; tests/test_family_even.py checks T = 0 against the power-law contour).

Usage (from the repository root)::

    python tests/make_family_even_points.py

Each point is computed by the independent slow reference tests/family_reference.py at its
default settings (self-accuracy as documented in the header of tests/data/family_points.json).
Diagonal couplings from a seeded RNG (entries uniform in [-0.5, 0.5]).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family_reference as fr  # noqa: E402

OUT = Path(__file__).resolve().parent / "data" / "family_even_points.json"
SEED = 20261203
# (scale, T, V, mu0)
SPECS = [
    (1.0, 0.1, 0.5, 0.4),  # the gate, window off the Dirac point
    (1.0, 0.05, 1.2, 0.4),  # Dirac point inside the window
    (0.5, 0.3, -2.0, 0.9),
    (2.0, 0.2, 1.0, -1.0),
    (1.0, 0.02, 0.0, -0.6),  # V = 0
    (0.5, 0.15, 0.0, 0.3),  # V = 0
    (1.0, 0.01, -0.8, 0.4),  # Dirac point at the Fermi edge
    (2.0, 0.3, -1.5, 0.2),
    (0.5, 0.005, 0.3, -0.5),
    (1.0, 0.25, 2.0, -0.05),
]


def main() -> None:
    rng = np.random.default_rng(SEED)
    couplings = [rng.uniform(-0.5, 0.5, 3) for _ in SPECS]
    points = []
    for (scale, T, V, mu0), j in zip(SPECS, couplings, strict=True):
        t0 = time.perf_counter()
        J = np.diag(j)
        r = fr.point(0.5, J, T, V, mu0, fr.PowerLaw(scale, 2.0))
        points.append(
            {
                "S": 0.5,
                "J": [float(x) for x in j],
                "T": T,
                "V": V,
                "mu0": mu0,
                "texture": {"kind": "power_law", "scale": scale, "exponent": 2.0},
                "current": r["current"],
                "conductance": r["conductance"],
                "conductance_err": r["conductance_err"],
                "spin": [float(x) for x in r["spin"]],
                "panels": r["panels"],
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        header = {
            "generator": "tests/make_family_even_points.py (reference "
            "tests/family_reference.py, default settings)",
            "seed": SEED,
            "settings": fr.SETTINGS,
            "J": "diagonal (Jx, Jy, Jz)",
        }
        text = fr.points_json(header, points)
        OUT.write_text(text)
        print(
            f"{len(points)}/{len(SPECS)} s={scale} T={T} V={V} mu0={mu0} "
            f"G={r['conductance']:.15e} {points[-1]['seconds']} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
