"""Griffe extension: read drreg's docstrings for the site (Sphinx roles become links, ``Example:`` sections).

drreg's docstrings name other objects as ``:func:`read```, ``:class:`~drreg.drr.DRR```, ``:meth:`forward```
(readable in ``help()`` and in an editor). For the site each becomes a link, ``[`read`][drreg.volume.read]``:
the name is resolved as Python would from the docstring's own scope, and ``~`` shows only its last part.
A drreg name that does not resolve is reported as a warning, so ``mkdocs build --strict`` fails on it; an
object that exists but has no docstring (hence no entry on the site) and names outside drreg
(``torch.Tensor.to``) stay plain code.

Google style allows ``Example:`` as well as ``Examples:``; griffe knows only the latter, so the former is renamed.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|obj|exc):`(~?)([\w.]+)`")
EXAMPLE = re.compile(r"^(\s*)Example:\s*$", flags=re.MULTILINE)
PACKAGE = "drreg"

logger = griffe.get_logger(__name__)


def _lookup(root: griffe.Module, path: str) -> griffe.Object | griffe.Alias | None:
    """The object at a dotted ``drreg.…`` path (``None`` when there is none)."""
    parts = path.split(".")
    if parts[0] != root.name:
        return None
    obj: Any = root
    for part in parts[1:]:
        try:
            obj = obj.members[part]
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
    return obj


def _canonical(root: griffe.Module, obj: griffe.Object, name: str) -> str | None:
    """The canonical path of ``name`` as seen from ``obj`` (``""`` when it has no docstring, ``None`` if unknown)."""
    head, _, rest = name.partition(".")
    try:
        path = obj.resolve(head) if head != root.name else head
    except griffe.NameResolutionError:
        return None
    path = f"{path}.{rest}" if rest else path
    target = _lookup(root, path)
    if target is None:
        return None
    try:
        target = target.final_target if target.is_alias else target
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return target.path if target.is_module or target.has_docstrings else ""


def _rewrite(root: griffe.Module, obj: griffe.Object) -> None:
    docstring = obj.docstring
    if docstring is None:
        return
    docstring.value = EXAMPLE.sub(r"\1Examples:", docstring.value)

    def link(match: re.Match[str]) -> str:
        short, name = match.groups()
        shown = name.rsplit(".", 1)[-1] if short else name
        path = _canonical(root, obj, name)
        if path:
            return f"[`{shown}`][{path}]"
        if path is None and (name.split(".", 1)[0] == PACKAGE or "." not in name):
            logger.warning(f"{obj.path}: cannot resolve the cross-reference {match.group(0)}")
        return f"`{shown}`"

    docstring.value = ROLE.sub(link, docstring.value)


def _walk(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias and member.parent is obj:
            yield from _walk(member)


class DrregDocstrings(griffe.Extension):
    """Rewrite every docstring of the package once it is fully loaded (before any is parsed)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != PACKAGE:
            return
        for obj in _walk(pkg):
            _rewrite(pkg, obj)
