"""The layout is the architecture: data flows engine → runs → drivers → CLI (ARCHITECTURE.md).

Every ``import`` of every module of ``umwelt/`` and ``sim/`` is read with :mod:`ast` — those
inside functions too, so a cycle cannot hide behind a late import — and the graph is checked:
no cycle, ``umwelt`` never imports ``sim``, a driver never imports another driver, nobody
outside a package takes its private names, and ``import umwelt`` stays free of torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("umwelt", "sim")
#: the drivers: each a Config + run(cfg); they may use the shared layers, never each other
DRIVERS = (
    *("sim.simulate", "sim.exact", "sim.circuits", "sim.train", "sim.hessian", "sim.plot"),
    "sim.phases",
)
#: what sits above the drivers and may call them (the sweep starts train and Hessian runs, a
#: reproduction a train run, its Hessian, the circuits and the phases)
ABOVE = ("sim.cli", "sim.api", "sim.benchmarks", "sim.sweep", "sim.reproduce")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of ours that ``name`` is (or lies in): ``a.b.c`` → ``a.b`` if only that is."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` of every import in ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for a in node.names:
                sub = f"{base}.{a.name}"
                if _resolve(sub) == sub:  # `from pkg import module`
                    out.append((sub, None, node.lineno))
                else:
                    out.append((base, a.name, node.lineno))
    return out


def _graph() -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(MODULES)
    for m in MODULES:
        for target, _, line in _imports(m):
            t = _resolve(target)
            if t is not None and t != m and not m.startswith(t + "."):  # a package's own init
                g.add_edge(m, t, line=line)
    return g


def _top(module: str, groups: tuple[str, ...]) -> str | None:
    return next((d for d in groups if module == d or module.startswith(d + ".")), None)


def test_no_import_cycle():
    cycles = list(nx.simple_cycles(_graph()))
    assert not cycles, "import cycles: " + "; ".join(" → ".join([*c, c[0]]) for c in cycles[:5])


def test_umwelt_never_imports_sim():
    bad = [(m, t) for m, t in _graph().edges if m.startswith("umwelt") and t.startswith("sim")]
    assert not bad, bad


def test_no_driver_imports_another_driver():
    bad = []
    for m, t in _graph().edges:
        src, dst = _top(m, DRIVERS), _top(t, DRIVERS)
        if dst is not None and src != dst and _top(m, ABOVE) is None:
            bad.append(f"{m} imports {t}")
    assert not bad, bad


def test_no_module_takes_the_private_names_of_another_package():
    bad = []
    for m in MODULES:
        for target, name, line in _imports(m):
            t = _resolve(target)
            if t is None or name is None or not name.startswith("_") or name.startswith("__"):
                continue
            owner = t.rpartition(".")[0] if MODULES[t].name != "__init__.py" else t
            if not (m == owner or m.startswith(owner + ".")):
                bad.append(f"{m}:{line} takes {t}.{name}")
    assert not bad, bad


def test_benchmarks_use_public_functions_only():
    """No ``module._private`` attribute of one of our modules in the benchmarks."""
    bad = []
    for m, path in MODULES.items():
        if not m.startswith("sim.benchmarks"):
            continue
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for a in node.names:
                    full = a.name if isinstance(node, ast.Import) else f"{node.module}.{a.name}"
                    if _resolve(full) == full:
                        aliases[a.asname or a.name.split(".")[0]] = full
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                bad.append(f"{m}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not bad, bad


@pytest.mark.parametrize("heavy", ["torch", "matplotlib", "sim"])
def test_import_umwelt_stays_light(heavy):
    code = f"import sys, umwelt; print({heavy!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_checker_sees_a_cycle(tmp_path, monkeypatch):
    """The cycle test can fail: two modules importing each other inside functions are found."""
    (tmp_path / "a.py").write_text("def f():\n    import b\n")
    (tmp_path / "b.py").write_text("def g():\n    from a import f\n")
    monkeypatch.setitem(MODULES, "a", tmp_path / "a.py")
    monkeypatch.setitem(MODULES, "b", tmp_path / "b.py")
    assert ["a", "b"] in [sorted(c) for c in nx.simple_cycles(_graph())]
