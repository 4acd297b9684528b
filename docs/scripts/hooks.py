"""MkDocs hooks: run the tutorial notebooks at small sizes and publish them with their outputs.

Each notebook in ``notebooks/`` is executed with its cell tagged ``parameters`` replaced by the sizes in
:data:`DOCS_SIZES` (as ``tests/test_notebooks.py`` does with its own, smaller ones). The executed copies are
written to ``build/docs-notebooks/`` (git-ignored) and handed to mkdocs-jupyter as pages ``notebooks/*.ipynb``;
the notebooks themselves are never modified. A cell that raises fails the build.

``DRREG_DOCS_EXECUTE=0`` skips the execution (pages without outputs), for quick previews with ``mkdocs serve``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
import time
from pathlib import Path

import nbformat
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "build" / "docs-notebooks"

# Sizes for the site: large enough for readable figures, small enough for the whole build to take ~1-2 min on
# 2 CPU cores. Every notebook must have an entry, so a new notebook cannot silently run at full size.
DOCS_SIZES = {
    "01_rendering.ipynb": {"HEIGHT": 100, "DELX": 4.0, "N_POINTS": [50, 100, 250, 500]},
    "02_registration.ipynb": {"HEIGHT": 64, "DELX": 5.0, "STAGE_STEPS": [40, 40], "SCALES": [0.5, 1.0]},
    "03_pose_regression.ipynb": {
        "HEIGHT": 32,
        "DELX": 12.0,
        "VOXEL_SIZE": 8.0,
        "BATCH_SIZE": 8,
        "MAX_STEPS": 40,
        "REFINE_HEIGHT": 32,
    },
}
# Said under the parameters cell of each page; a notebook may add a sentence of its own.
NOTE = (
    "> **On this site** the notebook ran while the site was built, at the sizes above (the notebook's own values "
    "are in the comments) and on one CPU thread, so the timings, errors and pictures below are those of a small "
    "run. Run the notebook from the repository for its full sizes."
)
NOTES = {
    "03_pose_regression.ipynb": "Here the network trains for only a few dozen steps, far too few to learn much: "
    "compare its errors with the mean pose's.",
}
# Lines that libraries print on stderr and that say nothing about drreg: removed from the pages.
NOISE = re.compile(
    r"^.*TqdmWarning: IProgress not found.*\n(?:  .*\n)?"  # tqdm.auto without ipywidgets (and its source line)
    r"|^[GTH]PU available: .*\n"  # Lightning's accelerator summary
    r"|^💡 Tip: .*\n"  # Lightning's advertisements
    r"|^.*`isinstance\(treespec, LeafSpec\)` is deprecated.*\n"  # Lightning on a newer torch (as in pyproject)
    r"|^Seed set to \d+\n",
    flags=re.MULTILINE,
)
CELL_TIMEOUT_S = 300
# The notebooks run side by side, one CPU thread each: on a small shared machine, thread pools that wait for one
# another cost more than they gain on these small sizes.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}

log = logging.getLogger("mkdocs.hooks.notebooks")


def docs_parameters(source: str, sizes: dict[str, object]) -> str:
    """The parameters cell for the site: each overridden value, with the notebook's own value beside it."""
    lines = ["# Sizes used to build this page (the notebook's own values in the comments)"]
    seen = set()
    for line in source.splitlines():
        match = re.match(r"\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.+?)\s*$", line)
        if match and match.group(1) in sizes:
            name, value = match.groups()
            lines.append(f"{name} = {sizes[name]!r}  # {value}")
            seen.add(name)
        elif match:
            lines.append(line)
    missing = sorted(set(sizes) - seen)
    if missing:
        raise PluginError(f"DOCS_SIZES names {missing}, which the parameters cell does not define")
    return "\n".join(lines)


def _prepare(path: Path) -> nbformat.NotebookNode:
    if path.name not in DOCS_SIZES:
        raise PluginError(f"{path.name}: add its small sizes to DOCS_SIZES in {Path(__file__).relative_to(ROOT)}")
    notebook = nbformat.read(path, as_version=4)
    cells = [cell for cell in notebook.cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise PluginError(f"{path.name} needs exactly one cell tagged 'parameters', found {len(cells)}")
    cells[0].source = docs_parameters(cells[0].source, DOCS_SIZES[path.name])
    note = " ".join([NOTE, NOTES.get(path.name, "")]).strip()
    notebook.cells.insert(notebook.cells.index(cells[0]) + 1, nbformat.v4.new_markdown_cell(note))
    return notebook


def _drop_noise(notebook: nbformat.NotebookNode) -> None:
    for cell in notebook.cells:
        outputs = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stderr":
                output.text = NOISE.sub("", output.text)
                if not output.text.strip():
                    continue
            # rich's live progress display: without ipywidgets, a warning and then an empty display.
            if output.output_type == "display_data" and not any(key.startswith("image/") for key in output.data):
                text = str(output.data.get("text/plain", ""))
                if not text.strip() or 'install "ipywidgets"' in text:
                    continue
            outputs.append(output)
        if cell.cell_type == "code":
            cell.outputs = outputs


async def _execute(path: Path, notebook: nbformat.NotebookNode, workdir: str) -> float:
    start = time.perf_counter()
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": workdir}},
    )
    # Inline figures whatever the caller's MPLBACKEND.
    env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline", **ONE_THREAD)
    try:
        await client.async_execute(env=env)
    except CellExecutionError as error:
        raise PluginError(f"notebook {path.name} failed to run:\n{error}") from None
    _drop_noise(notebook)
    return time.perf_counter() - start


async def _execute_all(notebooks: dict[Path, nbformat.NotebookNode]) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="drreg-docs-") as workdir:
        return await asyncio.gather(*(_execute(path, nb, workdir) for path, nb in notebooks.items()))


def run_notebooks(execute: bool = True) -> list[Path]:
    """Write the notebooks, executed at :data:`DOCS_SIZES` when ``execute``, to ``build/docs-notebooks``."""
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    notebooks = {path: _prepare(path) for path in paths}
    if execute:
        seconds = asyncio.run(_execute_all(notebooks))
        for path, took in zip(paths, seconds):
            log.info("executed %s in %.1f s", path.name, took)
    out = EXECUTED / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.ipynb"):
        stale.unlink()
    written = []
    for path, notebook in notebooks.items():
        nbformat.write(notebook, out / path.name)
        written.append(out / path.name)
    return written


# Before mkdocs-jupyter's own on_files (priority 0), which turns .ipynb files into pages.
@event_priority(50)
def on_files(files: Files, config: MkDocsConfig) -> Files:
    execute = os.environ.get("DRREG_DOCS_EXECUTE", "1") != "0"
    if not execute:
        log.warning("DRREG_DOCS_EXECUTE=0: the notebooks are published without outputs")
    for path in run_notebooks(execute):
        files.append(
            File(
                f"notebooks/{path.name}",
                src_dir=str(EXECUTED),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    return files
