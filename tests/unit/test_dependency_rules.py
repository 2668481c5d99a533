"""The dependency rules between haeryu's packages (docs/architecture.md), checked on the
import graph that grimp builds from the source.  Run by ``make lint`` and the suite.

Rules about packages that do not exist yet (stores, connectors, web) hold as soon as
they appear.  Every import counts, also those inside functions or under
``if TYPE_CHECKING:``: a module that needs another only for its types still depends on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import grimp
import pytest

ROOT = "haeryu"

# Packages that may import confluent_kafka: the shared Kafka helpers and the stream
# engine's Kafka adapter.  Everything else goes through them.
CONFLUENT_ALLOWED = ("haeryu.kafka", "haeryu.stream.kafka")

# What stores and connectors may import of haeryu besides themselves.
SINK_SIDE_ALLOWED = ("haeryu.stream.sinks", "haeryu.kafka")

# Import cycles tolerated inside these packages (none: keep it that way).
CYCLES_TOLERATED_IN: tuple[str, ...] = ()


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(ROOT, include_external_packages=True)


def inside(module: str, packages: tuple[str, ...] | str) -> bool:
    """Whether ``module`` is one of ``packages`` or below one of them."""
    if isinstance(packages, str):
        packages = (packages,)
    return any(module == p or module.startswith(p + ".") for p in packages)


def modules_of(graph: grimp.ImportGraph, package: str) -> list[str]:
    if package not in graph.modules:
        return []
    return sorted({package, *graph.find_descendants(package)})


def imports_of(graph: grimp.ImportGraph, package: str) -> Iterator[tuple[str, str]]:
    """(importer, imported) for every direct import made by ``package``'s modules."""
    for module in modules_of(graph, package):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            yield module, imported


def test_the_broker_imports_nothing_else_of_haeryu(graph: grimp.ImportGraph) -> None:
    bad = [
        f"{a} -> {b}"
        for a, b in imports_of(graph, "haeryu.broker")
        if inside(b, ROOT) and not inside(b, "haeryu.broker")
    ]
    assert not bad, "the broker must stand alone:\n" + "\n".join(bad)


@pytest.mark.parametrize("forbidden", ["haeryu.stores", "haeryu.web", "haeryu.connectors"])
def test_the_stream_engine_imports_no_store_connector_or_web(
    graph: grimp.ImportGraph, forbidden: str
) -> None:
    if forbidden not in graph.modules:
        return  # nothing to import yet
    chain = graph.find_shortest_chain("haeryu.stream", forbidden, as_packages=True)
    assert chain is None, " -> ".join(chain or ())


@pytest.mark.parametrize("package", ["haeryu.stores", "haeryu.connectors"])
def test_stores_and_connectors_use_only_the_sink_contract_and_haeryu_kafka(
    graph: grimp.ImportGraph, package: str
) -> None:
    bad = [
        f"{a} -> {b}"
        for a, b in imports_of(graph, package)
        if inside(b, ROOT) and not inside(b, (package, *SINK_SIDE_ALLOWED))
    ]
    assert not bad, f"{package} may import only {SINK_SIDE_ALLOWED}:\n" + "\n".join(bad)


def test_only_haeryu_kafka_and_the_engine_adapter_import_confluent_kafka(
    graph: grimp.ImportGraph,
) -> None:
    importers = graph.find_modules_that_directly_import("confluent_kafka")
    bad = sorted(m for m in importers if not inside(m, CONFLUENT_ALLOWED))
    assert not bad, f"import clients from haeryu.kafka instead: {bad}"
    # The rule is real: the adapter does use confluent_kafka.
    assert any(inside(m, "haeryu.stream.kafka") for m in importers)


def test_state_runtime_and_front_never_reach_confluent_kafka(graph: grimp.ImportGraph) -> None:
    for layer in ("haeryu.stream.api", "haeryu.stream.runtime", "haeryu.stream.state"):
        chain = graph.find_shortest_chain(layer, "confluent_kafka", as_packages=True)
        assert chain is None, " -> ".join(chain or ())


# The stream engine's layers: each may import only what is listed for it (besides
# itself and the engine's shared modules: columns, errors, sinks).
ENGINE_SHARED = ("haeryu.stream.columns", "haeryu.stream.errors", "haeryu.stream.sinks")
ENGINE_LAYERS = {
    "haeryu.stream.api": ("haeryu.stream.formats",),
    # Formats use only the front's leaf modules: user schemas and the Literal aliases.
    "haeryu.stream.formats": ("haeryu.stream.api.schema", "haeryu.stream.api.choices"),
    "haeryu.stream.runtime": ("haeryu.stream.api", "haeryu.stream.formats"),
    "haeryu.stream.state": ("haeryu.stream.runtime",),
    "haeryu.stream.local": (
        "haeryu.stream.api",
        "haeryu.stream.formats",
        "haeryu.stream.runtime",
        "haeryu.stream.state",
    ),
    "haeryu.stream.kafka": (
        "haeryu.kafka",
        "haeryu.stream.api",
        "haeryu.stream.formats",
        "haeryu.stream.runtime",
        "haeryu.stream.state",
    ),
}


@pytest.mark.parametrize("layer", sorted(ENGINE_LAYERS))
def test_the_stream_engine_layers_import_downwards_only(
    graph: grimp.ImportGraph, layer: str
) -> None:
    allowed = (layer, *ENGINE_SHARED, *ENGINE_LAYERS[layer])
    bad = [
        f"{a} -> {b}"
        for a, b in imports_of(graph, layer)
        if inside(b, ROOT) and not inside(b, allowed)
    ]
    assert modules_of(graph, layer), f"{layer} is gone: update ENGINE_LAYERS"
    assert not bad, f"{layer} may import only {allowed}:\n" + "\n".join(bad)


def cycles(graph: grimp.ImportGraph, modules: list[str]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    wanted = set(modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & wanted) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                child = edges[node][i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    modules = [m for m in modules_of(graph, ROOT) if not inside(m, CYCLES_TOLERATED_IN)]
    found = cycles(graph, modules)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle(graph: grimp.ImportGraph) -> None:
    """The check above can fail: a graph with a known cycle is reported."""
    fake = grimp.ImportGraph()
    for a, b in [("x.a", "x.b"), ("x.b", "x.c"), ("x.c", "x.a"), ("x.c", "x.d")]:
        fake.add_import(importer=a, imported=b)
    assert cycles(fake, sorted(fake.modules)) == [["x.a", "x.b", "x.c"]]
