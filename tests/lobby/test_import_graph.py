"""The import graph of production code (issue 9): dependencies point one way, no cycles.

Every ``import`` counts, including those inside functions (grimp reads them all from the
source). The room core ``lobby`` never imports ``breakouts`` - not even for type checking; apps
reach the core through lobby/extensions.py. Cycles are looked for among the imports that run:
an import under ``if TYPE_CHECKING:`` is an annotation, executed by no process, so it is not an
edge of the runtime graph.
"""

from __future__ import annotations

import grimp
import pytest

PACKAGES = ("lobby", "breakouts", "config")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def every_import() -> grimp.ImportGraph:
    # no cache (.grimp_cache): a stale one would hide an import added since it was written
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False, cache_dir=None)


@pytest.fixture(scope="module")
def runtime_imports() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)


def test_the_graph_is_the_real_one(every_import: grimp.ImportGraph) -> None:
    # breakouts does import the core (so the check below could see an edge if there were one)
    assert every_import.chain_exists(importer="breakouts", imported="lobby", as_packages=True)
    assert "lobby.services" in every_import.modules and "breakouts.services" in every_import.modules


def test_the_core_never_imports_breakouts(every_import: grimp.ImportGraph) -> None:
    chains = every_import.find_shortest_chains(importer="lobby", imported="breakouts")
    assert chains == set(), f"lobby -> breakouts: {sorted(chains)}"


def test_no_import_cycle(runtime_imports: grimp.ImportGraph) -> None:
    assert _cycles(runtime_imports) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for a, b in (("x.a", "x.b"), ("x.b", "x.c"), ("x.c", "x.a"), ("x.c", "x.d")):
        graph.add_import(importer=a, imported=b)
    assert _cycles(graph) == [["x.a", "x.b", "x.c"]]
