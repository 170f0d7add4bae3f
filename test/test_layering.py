"""The package's layering, read statically from the sources (every import, including those inside functions):
the top-level folders of vla_ros import each other without a cycle, and no method folder under
vla_ros/policies/ imports another method folder or is imported by the shared policy modules."""
import ast
from pathlib import Path

import vla_ros

ROOT = Path(vla_ros.__file__).parent
POLICIES = ROOT / "policies"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every vla_ros module `path` imports (`from X import y` counts X and X.y: y may be a submodule)."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if m == "vla_ros" or m.startswith("vla_ros.")}


def import_edges() -> dict[str, set[str]]:
    return {module_name(p): imported_modules(p) for p in ROOT.rglob("*.py")}


def top_level(module: str) -> str:
    """vla_ros.core.sync -> core; vla_ros.dds -> dds; vla_ros itself -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def folder_graph(edges: dict[str, set[str]], level) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for src, targets in edges.items():
        a = level(src)
        if not a:
            continue
        graph.setdefault(a, set())
        for t in targets:
            b = level(t)
            if b and b != a:
                graph[a].add(b)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle as [a, b, ..., a], or [] if the graph is acyclic (depth-first search, colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return []


def method_folders() -> set[str]:
    """Folders under policies/ that hold a method (`<m>/modeling_<m>.py`, the rule factory.py discovers by)."""
    return {p.name for p in POLICIES.iterdir() if (p / f"modeling_{p.name}.py").is_file()}


def policies_part(module: str) -> str:
    """vla_ros.policies.falcon.modeling_falcon -> falcon; vla_ros.policies.factory -> factory; else ''."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "policies" else ""


def test_cycle_finder_finds_a_cycle_and_accepts_a_dag():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    assert top_level("vla_ros.core.sync") == "core" and top_level("vla_ros.dds") == "dds"


def test_import_parser_sees_imports_inside_functions():
    found = imported_modules(POLICIES / "inspect_checkpoint.py")
    assert "vla_ros.policies.checkpoint_io.read_config" in found  # imported inside _vla_ros_report()
    assert imported_modules(POLICIES / "baseline" / "modeling_baseline.py") >= {
        "vla_ros.policies.vlm_policy", "vla_ros.policies.factory.register_policy"}


def test_top_level_folders_import_each_other_without_a_cycle():
    graph = folder_graph(import_edges(), top_level)
    assert {"core", "policies", "training", "ros", "commands"} <= set(graph)
    assert "training" not in graph["policies"], "inference must load checkpoints without vla_ros.training"
    cycle = find_cycle(graph)
    assert not cycle, f"import cycle between top-level folders of vla_ros: {' -> '.join(cycle)}"


def test_no_method_folder_imports_another():
    methods = method_folders()
    assert {"baseline", "falcon", "spatial_forcing", "spatialvla", "spatialvla_legacy", "pi0"} <= methods
    bad = []
    for src, targets in import_edges().items():
        here = policies_part(src)
        if not here:  # outside vla_ros/policies (training, sim, ...): may use any method
            continue
        for t in targets:
            there = policies_part(t)
            if there in methods and there != here:
                who = f"method folder {here}" if here in methods else "shared module"
                bad.append(f"{src} ({who}) imports {t}")
    assert not bad, "a method folder is imported outside itself within vla_ros/policies:\n" + "\n".join(sorted(bad))
