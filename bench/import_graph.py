"""The shape of imagegen's imports: the largest import circle (strongly connected modules) and the modules
that import mlcore or torch. Read statically (grimp, the graph import-linter checks), so it measures any
checkout: ``python bench/import_graph.py [TREE]`` (default: this repository)."""
import sys
from pathlib import Path

import grimp


def strongly_connected(graph, modules: list[str]) -> list[list[str]]:
    """Tarjan's algorithm over the direct imports among ``modules``."""
    inside = set(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module) & inside:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in modules:
        if module not in index:
            visit(module)
    return found


def main() -> None:
    tree = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    sys.path.insert(0, str(tree))
    graph = grimp.build_graph("imagegen", "mlcore", cache_dir=None)
    modules = sorted(m for m in graph.modules if m.startswith("imagegen"))
    largest = max(strongly_connected(graph, modules), key=len)
    heavy = [m for m in modules if any(i.split(".")[0] in ("mlcore", "torch", "torchvision")
                                       for i in graph.find_modules_directly_imported_by(m))]
    print(f"imagegen modules: {len(modules)}")
    print(f"largest import circle: {len(largest) if len(largest) > 1 else 0} modules {largest if len(largest) > 1 else ''}")
    print(f"imagegen modules importing mlcore or torch: {len(heavy)}")
    for module in heavy:
        print(f"  {module}")


if __name__ == "__main__":
    main()
