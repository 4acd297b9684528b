"""The tutorial notebooks run end to end (at small sizes: the cell tagged "parameters" is overridden).

`make test` executes them in the docs build (docs/scripts/hooks.py, which fails the build on an error), so this
copy of the check is slow-marked: it runs with `make test-all`.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {
    "01_rendering.ipynb": "HEIGHT = 24\nDELX = 16.0\nN_POINTS = [10, 20]",
    "02_registration.ipynb": "HEIGHT = 32\nDELX = 10.0\nSTAGE_STEPS = [10, 10]\nSCALES = [0.5, 1.0]",
    "03_pose_regression.ipynb": "HEIGHT = 24\nDELX = 16.0\nVOXEL_SIZE = 8.0\nBATCH_SIZE = 4\nMAX_STEPS = 3\n"
    "REFINE_HEIGHT = 24",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs(name, tmp_path):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    parameters = [cell for cell in notebook.cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(parameters) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    parameters[0].source = SMALL[name]
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env={"MPLBACKEND": "Agg"})
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
