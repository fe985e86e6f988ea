"""chargen's modules import each other without a cycle (lazy imports inside functions
included), so each one can be read, tested and listed as a stage's dep on its own."""

import ast

from conftest import ROOT

PACKAGE = ROOT / "chargen"


def imported_modules(path):
    """The chargen modules a file imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # from . import x / from .x import y
                module = "chargen" + (f".{module}" if module else "")
            if module == "chargen":
                found.update(f"chargen.{a.name}" for a in node.names)
            elif module.startswith("chargen."):
                found.add(module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("chargen."))
    return found


def import_graph():
    modules = {f"chargen.{p.stem}": p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {name: imported_modules(path) & set(modules) for name, path in modules.items()}


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state = {}  # module -> "open" while on the current path, "done" once fully explored

    def visit(module, path):
        state[module] = "open"
        for dep in sorted(graph[module]):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep, path + [dep])
                if cycle:
                    return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [module])
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_a_lazy_import_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_imported_modules_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from chargen.io import x\n\ndef f():\n    from chargen.params import load\n"
                      "    from chargen import model\n    import chargen.ngram\n")
    assert imported_modules(source) == {"chargen.io", "chargen.params", "chargen.model", "chargen.ngram"}


def test_chargen_has_no_import_cycle():
    graph = import_graph()
    assert "chargen.io" in graph and "chargen.params" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
