"""DiffDRR 0.6.1's API notebooks and tutorials, run cell by cell against drreg (``notebooks/*.cells``).

Each extract holds the code cells of one DiffDRR notebook with ``diffdrr`` replaced by ``drreg`` and sizes
reduced (see its header for where it came from); ``_runner.py`` runs them. A test asserts that every cell not
marked ``skip:`` runs and that every ``test_eq`` / ``test_close`` / ``test_exports`` check passes. The counts
are recorded in docs/diffdrr.md.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.compat._runner import NOTEBOOKS_DIR, run_notebook

# Tutorials that take more than ~20 s on a 2-core CPU at reduced size (none do: all 16 take ~45 s together).
SLOW: set[str] = set()
NOTEBOOKS = sorted(path.stem for path in NOTEBOOKS_DIR.glob("*.cells"))
# Optional packages a whole notebook needs (the 3D-geometry tutorial is pyvista throughout: drreg[viz3d]).
REQUIRES = {"tutorial_geometry": "pyvista"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in NOTEBOOKS])
def test_notebook(name: str) -> None:
    package = REQUIRES.get(name)
    if package is not None and importlib.util.find_spec(package) is None:
        pytest.skip(f"{name} needs {package} (pip install 'drreg[viz3d]')")
    report = run_notebook(name)
    print(
        f"{name}: {report.cells} cells, {report.ran} ran, {len(report.skipped)} skipped, "
        f"{report.checks - len(report.checks_failed)}/{report.checks} checks, {report.seconds:.1f} s"
    )
    assert not report.failed, report.failed
    assert not report.checks_failed, report.checks_failed
    assert report.ran + len(report.skipped) == report.cells
