"""The import graph of mrsbench has no cycles and no upward imports between its subpackages (every import
counted: module level, inside functions and under TYPE_CHECKING). Built with ast from the source, no third-party
tool."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "mrsbench"


def import_graph() -> dict[str, set[str]]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            graph[m] |= {n for n in names if n in mods and n != m}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle (a list of modules, first = last) or None (depth-first search with colours)."""
    colour, stack = {}, []

    def visit(v):
        colour[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if colour.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in colour:
                found = visit(w)
                if found:
                    return found
        colour[v] = 2
        stack.pop()
        return None

    for v in sorted(graph):
        if v not in colour:
            found = visit(v)
            if found:
                return found
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_mrsbench_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "mrsbench.cli.parser" in graph["mrsbench.cli.app"]   # the graph is really built
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


# The layers, lowest first: a module may import its own subpackage and the subpackages before it, never one after
# it (written down once, here; docs/developer-guide.md shows the same order). Top-level modules (the package
# itself, __main__, the Python API and the compatibility modules for 0.1 plugins) form the top layer "api".
LAYERS = ("core", "physics", "processing", "metrics", "data", "fitting", "generators", "harness", "boards", "sweep",
          "cli", "api")
BOTTOM_EXTRA = {"resources": "core"}   # package data (the spin-system table) read by physics


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and (PKG / f"{parts[1]}.py").exists()):
        return "api"
    return BOTTOM_EXTRA.get(parts[1], parts[1])


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    for src, targets in graph.items():
        for dst in targets:
            if rank[layer_of(dst)] > rank[layer_of(src)]:
                bad.append(f"{src} ({layer_of(src)}) imports {dst} ({layer_of(dst)})")
    return sorted(bad)


def test_every_subpackage_has_a_layer():
    subpackages = {p.parent.relative_to(PKG).parts[0] for p in PKG.rglob("__init__.py") if p.parent != PKG}
    assert subpackages, "no subpackages found"
    assert subpackages <= set(LAYERS) | set(BOTTOM_EXTRA), subpackages - set(LAYERS) - set(BOTTOM_EXTRA)


def test_the_checker_finds_an_upward_import():
    assert upward_imports({"mrsbench.core.axis": {"mrsbench.harness.protocol"}, "mrsbench.harness.protocol": set()})
    assert upward_imports({"mrsbench.physics.basis": {"mrsbench"}, "mrsbench": set()})
    assert not upward_imports({"mrsbench.harness.protocol": {"mrsbench.core.axis"}, "mrsbench.core.axis": set()})


def test_no_layer_imports_a_higher_one():
    problems = upward_imports(import_graph())
    assert not problems, "\n".join(problems)


def test_no_module_is_past_400_lines():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
