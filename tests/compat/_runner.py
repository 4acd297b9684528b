"""Run the committed extracts of DiffDRR's notebooks (``notebooks/*.cells``) cell by cell against drreg.

An extract is plain text (not ``.py``, so that ``--doctest-modules`` never imports it): a header of ``#`` lines,
then cells, each opened by a line ``# %% <label>`` or ``# %% <label> skip: <reason>``. Every cell of a notebook
runs in one namespace, as in a kernel, after a last ``diffdrr`` → ``drreg`` substitution. IPython's ``%timeit``
line magic (``x = %timeit -o stmt`` included) runs its statement once; nbdev's ``test_eq`` / ``test_close`` and
``test_exports`` are provided, and each call is one counted check.
"""

from __future__ import annotations

import importlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

NOTEBOOKS_DIR = Path(__file__).resolve().parent / "notebooks"
_CELL = re.compile(r"^# %%(?P<label>[^\n]*?)(?:\s+skip:\s*(?P<reason>.*))?$")
# `x = %timeit -o -n 3 stmt` or `%timeit stmt`: keep the assignment, run `stmt` once through _timeit.
_TIMEIT = re.compile(r"^(?P<indent>\s*)(?P<assign>\w+\s*=\s*)?%timeit(?:\s+-\w(?:\s+\d+)?)*\s+(?P<stmt>.+)$")


@dataclass
class Cell:
    label: str
    source: str
    skip_reason: str | None = None


@dataclass
class Report:
    """What running one extract measured."""

    notebook: str
    cells: int = 0
    ran: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    checks: int = 0
    checks_failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def read_cells(path: Path) -> list[Cell]:
    """Split an extract into its cells (the header before the first ``# %%`` line is dropped)."""
    cells: list[Cell] = []
    for line in path.read_text().splitlines():
        match = _CELL.match(line)
        if match:
            cells.append(Cell(match["label"].strip(), "", match["reason"]))
        elif cells:
            cells[-1].source += line + "\n"
    return cells


def translate(source: str) -> str:
    """Make a notebook cell plain Python: ``diffdrr`` → ``drreg``, ``%timeit`` → one timed run."""
    lines = []
    for line in source.replace("diffdrr", "drreg").splitlines():
        match = _TIMEIT.match(line)
        if match:
            line = f"{match['indent']}{match['assign'] or ''}_timeit(lambda: {match['stmt']})"
        lines.append(line)
    return "\n".join(lines) + "\n"


class _TimeitResult:
    """The fields of IPython's ``TimeitResult`` that DiffDRR's tutorials read."""

    def __init__(self, seconds: float) -> None:
        self.average = seconds
        self.stdev = 0.0
        self.best = seconds
        self.worst = seconds
        self._precision = 3


def _timeit(thunk: Any) -> _TimeitResult:
    start = time.perf_counter()
    thunk()
    return _TimeitResult(time.perf_counter() - start)


def _as_tensor(x: Any) -> torch.Tensor:
    return x.detach().cpu().double() if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.float64)


class Checks:
    """nbdev's ``test_eq`` / ``test_close`` (fastcore.test) and an export check, each call counted."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def _record(self, ok: bool, what: str) -> None:
        self.report.checks += 1
        if not ok:
            self.report.checks_failed.append(what)

    def test_eq(self, a: Any, b: Any) -> None:
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            ok = _as_tensor(a).shape == _as_tensor(b).shape and bool(torch.equal(_as_tensor(a), _as_tensor(b)))
        else:
            ok = a == b
        self._record(bool(ok), f"test_eq({a!r}, {b!r})")

    def test_close(self, a: Any, b: Any, eps: float = 1e-5) -> None:
        if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b):
            ok = all(_close(x, y, eps) for x, y in zip(a, b, strict=True))
        else:
            ok = _close(a, b, eps)
        self._record(ok, f"test_close({a!r}, {b!r}, eps={eps})")

    def test_exports(self, module: str, names: list[str]) -> None:
        """One check per name that DiffDRR 0.6.1 exports from ``diffdrr.<module>``: importable from ``drreg``."""
        mod = importlib.import_module(module.replace("diffdrr", "drreg"))
        for name in names:
            self._record(hasattr(mod, name), f"{module}.{name} importable")


def _close(a: Any, b: Any, eps: float) -> bool:
    a, b = _as_tensor(a), _as_tensor(b)
    return a.shape == b.shape and bool(torch.all((a - b).abs() <= eps))


def run_notebook(name: str) -> Report:
    """Run every non-skipped cell of ``notebooks/<name>.cells`` in one namespace; never raises."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = Report(name)
    checks = Checks(report)
    namespace: dict[str, Any] = {
        "__name__": f"diffdrr_notebook_{name}",
        "_timeit": _timeit,
        "test_eq": checks.test_eq,
        "test_close": checks.test_close,
        "test_exports": checks.test_exports,
    }
    start = time.perf_counter()
    for index, cell in enumerate(read_cells(NOTEBOOKS_DIR / f"{name}.cells")):
        label = f"{index}: {cell.label}"
        report.cells += 1
        if cell.skip_reason is not None:
            report.skipped[label] = cell.skip_reason
            continue
        try:
            exec(compile(translate(cell.source), f"<{name} cell {label}>", "exec"), namespace)
        except Exception as error:  # noqa: BLE001 - a failing cell is a result to report, not a crash
            report.failed[label] = f"{type(error).__name__}: {error}"
        else:
            report.ran += 1
        plt.close("all")
    report.seconds = time.perf_counter() - start
    return report
