"""The package structure: torch-free parts import without torch, no import cycles, and glowcore's
layers import one way (the layers contract itself is in pyproject.toml, checked by lint-imports
in CI; the cycle check here runs with the tests)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: glowcore's modules that must import without torch (the GUI thread may use them).
TORCH_FREE = [
    "glowcore",
    "glowcore.base.limits",
    "glowcore.base.modes",
    "glowcore.base.progress",
    "glowcore.io.fileio",
    "glowcore.io.imagefiles",
    "glowcore.io.walk",
    "glowcore.data.packs",
    "glowcore.ops.photo",
    "glowcore.cli.main",
]


def _imported_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_torch_free_modules_do_not_import_torch():
    modules = _imported_after("\n".join(f"import {m}" for m in TORCH_FREE))
    assert set(TORCH_FREE) <= set(modules)  # (they did import)
    assert "torch" not in modules
    assert not any(m.startswith(("PySide6", "explorer")) for m in modules)


def test_the_public_api_imports_on_first_use():
    # the check above is not vacuous: the lazy names do bring torch in, and they are the real objects
    modules = _imported_after(
        "import glowcore\n"
        "from glowcore import Glow, GlowConfig, Latent, load_model, save_model, to_uint8\n"
        "import glowcore.model, glowcore.latent, glowcore.io.checkpoint, glowcore.base.images\n"
        "assert Glow is glowcore.model.Glow and GlowConfig is glowcore.model.GlowConfig\n"
        "assert Latent is glowcore.latent.Latent and to_uint8 is glowcore.base.images.to_uint8\n"
        "assert load_model is glowcore.io.checkpoint.load_model and save_model is glowcore.io.checkpoint.save_model\n"
        "assert glowcore.ops.__name__ == 'glowcore.ops'  # packages on attribute access\n"
    )
    assert "torch" in modules


def test_unknown_names_are_attribute_errors():
    import glowcore

    with pytest.raises(AttributeError, match="no attribute 'flows'"):
        glowcore.flows  # noqa: B018  (an old flat module: gone, not silently found)


def _strongly_connected(graph) -> list[set[str]]:
    """Tarjan's strongly connected components of the direct-import graph, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[set[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.add(m)
                    if m == node:
                        break
                out.append(component)
    return out


def test_strongly_connected_finds_a_cycle():
    grimp = pytest.importorskip("grimp")
    graph = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    assert {"p.a", "p.b", "p.c"} in _strongly_connected(graph)


def test_no_import_cycles_among_the_project_modules():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("glowcore", "explorer", include_external_packages=False)
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert cycles == []


def test_glowcore_layers_import_one_way():
    grimp = pytest.importorskip("grimp")
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    graph = grimp.build_graph("glowcore")
    assert {m.split(".")[1] for m in graph.modules if m.count(".") >= 1} <= {layer.split(".")[1] for layer in layers}, \
        "a glowcore package or module that is in no layer"
    assert graph.find_illegal_dependencies_for_layers(layers=layers, containers=set()) == set()


def test_every_glowcore_package_is_installed():
    """pyproject lists the packages a wheel holds: a new folder left out would be missing there."""
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "glowcore").rglob("__init__.py")}
    assert found and found <= listed, sorted(found - listed)


def test_no_module_of_glowcore_is_over_600_lines():
    """Design rule 8, for the engine as tests/explorer/test_structure.py checks it for the app."""
    from pathlib import Path

    import glowcore

    root = Path(glowcore.__file__).resolve().parent
    long = {p.relative_to(root).as_posix(): n for p in root.rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}
