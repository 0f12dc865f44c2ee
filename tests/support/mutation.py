"""Mutation testing of the statistical core: does the suite notice when the code is wrong?

``make mutate`` (``python tests/support/mutation.py``) changes one operator or constant at a
time inside the functions of the modules in ``TARGETS``, runs the tests that execute that
function, and counts the mutant *killed* when a test fails (or the run times out). A mutant
that survives is either equivalent (no observable change) or a gap in the tests; each one is
listed, with its reason, in ``docs/testing.md``.

Why our own runner rather than mutmut or cosmic-ray: both start each mutant's tests in a fresh
process (cosmic-ray) or from a copied tree (mutmut 3, which copies the sources into
``mutants/``; our SQL is installed as the package ``eval_pipelines.sql`` through a
``package-dir`` mapping that a copied tree lacks). Importing pandas, scipy, scikit-learn,
DuckDB and pydantic costs seconds per process, more than most of the tests themselves. Here
the parent imports them once and forks a child per mutant; the child swaps the mutated
function's ``__code__`` in place, so every module that imported the function sees the
mutant, and runs pytest on only the tests that called that function (found once by tracing
the unmutated run), fastest first, stopping at the first failure.

Operators (as mutmut's): comparisons (``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``,
``is`` / ``in`` negated), arithmetic (``+`` <-> ``-``, ``*`` <-> ``/``, ``//`` -> ``/``,
``**`` -> ``*``, ``%`` -> ``//``), ``and`` <-> ``or``, ``not x`` -> ``x``, ``-x`` -> ``x``,
augmented assignment (``+=`` <-> ``-=``), numbers (``n`` -> ``n + 1``; ``1`` -> ``0``, floats
``x`` -> ``x * 2`` and ``0.0`` -> ``1.0``) and booleans (``True`` <-> ``False``). Strings are
not mutated (they are messages, whose tests are elsewhere), nor module-level statements
(mutmut 3 mutates only inside functions too), docstrings or annotations.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"

# The statistical core, and the test files whose tests may kill its mutants. The slow
# coverage simulations are left out (minutes per mutant); their unit-level twins are in.
TARGETS: dict[str, list[str]] = {
    "eval_pipelines/gates.py": ["tests/test_gates.py"],
    "eval_pipelines/inference/significance.py": [
        "tests/test_significance.py",
        "tests/test_comparison_oracle.py",
        "tests/test_aa.py",
        "tests/test_pairing.py",
    ],
    "eval_pipelines/inference/resampling.py": [
        "tests/test_resampling.py",
        "tests/test_significance.py",
        "tests/test_comparison_oracle.py",
        "tests/test_aa.py",
    ],
    "eval_pipelines/evaluation.py": [
        "tests/test_significance.py",
        "tests/test_comparison_oracle.py",
        "tests/test_aa.py",
        "tests/test_pairing.py",
        "tests/test_metrics_oracle.py",
    ],
    "eval_pipelines/inference/bootstrap.py": [
        "tests/test_significance.py",
        "tests/test_comparison_oracle.py",
        "tests/test_aa.py",
        "tests/test_pairing.py",
        "tests/test_metrics_oracle.py",
    ],
    "eval_pipelines/stats/binary.py": [
        "tests/test_families.py",
        "tests/test_metrics_oracle.py",
        "tests/test_comparison_oracle.py",
        "tests/test_pairing.py",
    ],
    "eval_pipelines/tasks/binary.py": [
        "tests/test_metric_functions.py",
        "tests/test_metrics_oracle.py",
        "tests/test_comparison_oracle.py",
    ],
}

# Modules imported once in the parent so that each forked child starts warm.
WARM = [
    "numpy",
    "pandas",
    "scipy.stats",
    "scipy.integrate",
    "sklearn.metrics",
    "duckdb",
    "sqlalchemy",
    "pyarrow",
    "pydantic",
    "pytest",
    "eval_pipelines.pipeline",
    "eval_pipelines.gates",
    "eval_pipelines.evaluation",
]

SWAPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Pow: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.And: ast.Or,
    ast.Or: ast.And,
}


@dataclass
class Mutant:
    module: str  # file path relative to the root
    function: str  # qualified name of the top-level function or method that holds it
    line: int
    site: int  # index among the module's mutation sites
    description: str
    source: str = ""
    status: str = ""  # killed | survived | timeout | no tests | error
    tests_run: int = 0
    seconds: float = 0.0


@dataclass
class Site:
    node: ast.AST
    function: str
    description: str
    apply: object = field(repr=False, default=None)


def _number_mutation(value: float | int) -> float | int:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return 0 if value == 1 else value + 1
    return 1.0 if value == 0.0 else value * 2


def _sites(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    """(qualified function name, node) for every node inside a top-level def or method body."""

    def body_nodes(function: ast.FunctionDef) -> Iterator[ast.AST]:
        body = function.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        for statement in body:
            for node in ast.walk(statement):
                if isinstance(node, ast.arg):
                    continue
                yield node

    for item in tree.body:
        if isinstance(item, ast.FunctionDef):
            for node in body_nodes(item):
                yield item.name, node
        elif isinstance(item, ast.ClassDef):
            for member in item.body:
                if isinstance(member, ast.FunctionDef):
                    for node in body_nodes(member):
                        yield f"{item.name}.{member.name}", node


def _annotation_nodes(tree: ast.Module) -> set[int]:
    """Ids of nodes inside annotations (never executed as values)."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign | ast.arg):
            annotation = node.annotation
        elif isinstance(node, ast.FunctionDef):
            annotation = node.returns
        else:
            continue
        if annotation is not None:
            ids.update(id(n) for n in ast.walk(annotation))
    return ids


def enumerate_mutants(path: str) -> list[Mutant]:
    source = (ROOT / path).read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    skip = _annotation_nodes(tree)
    mutants = []
    for site, (function, node, description, _) in enumerate(_mutations(tree, skip)):
        mutants.append(
            Mutant(
                module=path,
                function=function,
                line=node.lineno,
                site=site,
                description=description,
                source=lines[node.lineno - 1].strip(),
            )
        )
    return mutants


def _mutations(tree: ast.Module, skip: set[int]) -> Iterator[tuple[str, ast.AST, str, int]]:
    """(function, node, description, operator index) for every mutation site, in a fixed order
    (the operator index says which of a chained comparison's operators changes)."""

    def swap(op: ast.AST) -> str:
        return f"{type(op).__name__} -> {SWAPS[type(op)].__name__}"

    for function, node in _sites(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in SWAPS:
                    yield function, node, swap(op), i
        elif isinstance(node, ast.BinOp | ast.AugAssign | ast.BoolOp) and type(node.op) in SWAPS:
            yield function, node, swap(node.op), 0
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
            yield function, node, f"drop {type(node.op).__name__}", 0
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            yield function, node, f"{node.value!r} -> {_number_mutation(node.value)!r}", 0


def mutated_tree(path: str, site: int) -> ast.Module:
    """The module's AST with mutation ``site`` applied."""
    tree = ast.parse((ROOT / path).read_text())
    skip = _annotation_nodes(tree)
    for index, (_, node, _, op_index) in enumerate(_mutations(tree, skip)):
        if index != site:
            continue
        if isinstance(node, ast.Compare):
            node.ops[op_index] = SWAPS[type(node.ops[op_index])]()
        elif isinstance(node, ast.BinOp | ast.AugAssign | ast.BoolOp):
            node.op = SWAPS[type(node.op)]()
        elif isinstance(node, ast.UnaryOp):
            _replace(tree, node, node.operand)
        elif isinstance(node, ast.Constant):
            node.value = _number_mutation(node.value)
        return ast.fix_missing_locations(tree)
    raise IndexError(f"{path} has no mutation site {site}")


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return
    raise LookupError("node not found")


def _module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _find_code(code, qualname: str):
    for const in code.co_consts:
        if hasattr(const, "co_qualname"):
            if const.co_qualname == qualname:
                return const
            found = _find_code(const, qualname)
            if found is not None:
                return found
    return None


def _function_object(module, qualname: str):
    owner, _, name = qualname.rpartition(".")
    holder = getattr(module, owner) if owner else module
    obj = holder.__dict__[name] if owner else getattr(module, name)
    if isinstance(obj, property):
        obj = obj.fget
    elif isinstance(obj, staticmethod | classmethod):
        obj = obj.__func__
    while hasattr(obj, "__wrapped__"):
        obj = obj.__wrapped__
    return obj


def apply_mutant(mutant: Mutant) -> None:
    """Swap the mutated function's code into the live function object."""
    module = importlib.import_module(_module_name(mutant.module))
    tree = mutated_tree(mutant.module, mutant.site)
    code = compile(tree, str(ROOT / mutant.module), "exec")
    new_code = _find_code(code, mutant.function)
    _function_object(module, mutant.function).__code__ = new_code
    for value in vars(module).values():  # functools.cache results of the original code
        if hasattr(value, "cache_clear"):
            value.cache_clear()


# ------------------------------------------------------------------------------------------
# Which tests execute which function: traced once on the unmutated code.
# ------------------------------------------------------------------------------------------


def trace_tests(test_files: list[str], modules: list[str], out: Path) -> None:
    """Run the tests once (in this process) recording which functions of ``modules`` each test
    called (by file and first line) and how long it took; write them as JSON to ``out``.

    Calls made while setting a test up are recorded for its whole test file: a module-scoped
    fixture (one engine run shared by the file's tests) runs in the setup of the file's first
    test, and every test of the file may assert on its result.
    """
    import pytest

    files = {str(ROOT / m) for m in modules}
    tests: dict[str, dict] = {}
    setups: dict[str, dict] = {}

    class Tracer:
        def __init__(self) -> None:
            self.calls: set[tuple[str, int]] = set()

        def profile(self, frame, event, arg):
            if event == "call" and frame.f_code.co_filename in files:
                self.calls.add((frame.f_code.co_filename, frame.f_code.co_firstlineno))

        def traced(self):
            self.calls = set()
            started = time.perf_counter()
            sys.setprofile(self.profile)
            try:
                yield
            finally:
                sys.setprofile(None)
            return sorted(self.calls), time.perf_counter() - started

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_setup(self, item):
            calls, seconds = yield from self.traced()
            entry = setups.setdefault(_file_of(item.nodeid), {"calls": [], "seconds": 0.0})
            entry["calls"] = sorted({*map(tuple, entry["calls"]), *calls})
            entry["seconds"] += seconds

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_call(self, item):
            calls, seconds = yield from self.traced()
            tests[item.nodeid] = {"calls": calls, "seconds": seconds}

    code = pytest.main(
        ["-q", "-p", "no:cacheprovider", "-m", "not slow", "--rootdir", str(ROOT), *test_files],
        plugins=[Tracer()],
    )
    if code != 0:
        raise SystemExit(f"the unmutated tests fail (pytest exit {code}): fix them first")
    out.write_text(json.dumps({"tests": tests, "setups": setups}))


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _function_ranges(path: str) -> dict[str, tuple[int, int]]:
    tree = ast.parse((ROOT / path).read_text())

    def span(function: ast.FunctionDef) -> tuple[int, int]:
        # A decorated function's code starts at its first decorator.
        first = min([function.lineno, *(d.lineno for d in function.decorator_list)])
        return first, function.end_lineno

    ranges = {}
    for item in tree.body:
        if isinstance(item, ast.FunctionDef):
            ranges[item.name] = span(item)
        elif isinstance(item, ast.ClassDef):
            for member in item.body:
                if isinstance(member, ast.FunctionDef):
                    ranges[f"{item.name}.{member.name}"] = span(member)
    return ranges


def tests_for(mutant: Mutant, traces: dict[str, dict]) -> tuple[list[str], float]:
    """Tests that called the mutant's function (or a function nested in it), directly or
    through their file's fixtures, cheapest file and fastest test first; and their cost in
    seconds on the unmutated code."""
    low, high = _function_ranges(mutant.module)[mutant.function]
    filename = str(ROOT / mutant.module)

    def hits(calls) -> bool:
        return any(f == filename and low <= line <= high for f, line in calls)

    setups = traces["setups"]
    through_setup = {path for path, info in setups.items() if hits(info["calls"])}
    chosen = [
        (setups.get(_file_of(nodeid), {}).get("seconds", 0.0), info["seconds"], nodeid)
        for nodeid, info in traces["tests"].items()
        if hits(info["calls"]) or _file_of(nodeid) in through_setup
    ]
    files = {_file_of(nodeid) for _, _, nodeid in chosen}
    cost = sum(seconds for _, seconds, _ in chosen) + sum(
        setups.get(path, {}).get("seconds", 0.0) for path in files
    )
    return [nodeid for *_, nodeid in sorted(chosen)], cost


# ------------------------------------------------------------------------------------------
# Running mutants in forked children.
# ------------------------------------------------------------------------------------------


def _child(mutant: Mutant, tests: list[str], show: bool) -> None:
    if not show:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    try:
        apply_mutant(mutant)
    except Exception:
        os._exit(3)
    import pytest

    code = pytest.main(
        ["-x", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT), "-o", "addopts=", *tests]
    )
    os._exit(0 if code == 0 else 1)


def run_mutants(
    mutants: list[Mutant], traces: dict[str, dict], workers: int, show: bool = False
) -> None:
    pending = list(mutants)
    running: dict[int, tuple[Mutant, float, float]] = {}
    done = 0
    while pending or running:
        while pending and len(running) < workers:
            mutant = pending.pop(0)
            tests, cost = tests_for(mutant, traces)
            mutant.tests_run = len(tests)
            if not tests:
                mutant.status = "no tests"
                done += 1
                continue
            budget = 3 * cost + 30
            pid = os.fork()
            if pid == 0:
                _child(mutant, tests, show)
            running[pid] = (mutant, time.monotonic(), budget)
        finished, status = os.waitpid(-1, os.WNOHANG)
        if finished == 0:
            for pid, (mutant, started, budget) in list(running.items()):
                if time.monotonic() - started > budget:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    mutant.status, mutant.seconds = "timeout", time.monotonic() - started
                    del running[pid]
                    done += 1
            time.sleep(0.02)
            continue
        mutant, started, _ = running.pop(finished)
        code = os.waitstatus_to_exitcode(status)
        mutant.seconds = time.monotonic() - started
        mutant.status = {0: "survived", 1: "killed", 3: "error"}.get(code, "killed")
        done += 1
        print(
            f"[{done}/{len(mutants)}] {mutant.status:8} {mutant.module}:{mutant.line} "
            f"{mutant.function}: {mutant.description}",
            flush=True,
        )


def summary(mutants: list[Mutant]) -> dict:
    counted = [m for m in mutants if m.status != "error"]
    killed = [m for m in counted if m.status in ("killed", "timeout")]
    per_module = {}
    for path in sorted({m.module for m in counted}):
        ms = [m for m in counted if m.module == path]
        k = [m for m in ms if m.status in ("killed", "timeout")]
        per_module[path] = {"mutants": len(ms), "killed": len(k)}
    return {
        "mutants": len(counted),
        "killed": len(killed),
        "kill_rate": len(killed) / len(counted) if counted else 0.0,
        "errors": len(mutants) - len(counted),
        "per_module": per_module,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="only this target (repeatable)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "mutation")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--line", type=int, help="only the mutants on this line (to rerun one)")
    parser.add_argument("--show", action="store_true", help="show the tests' output")
    args = parser.parse_args(argv)

    targets = {m: t for m, t in TARGETS.items() if not args.module or m in args.module}
    mutants = [mutant for path in targets for mutant in enumerate_mutants(path)]
    if args.line is not None:
        mutants = [m for m in mutants if m.line == args.line]
    if args.list:
        for m in mutants:
            print(f"{m.module}:{m.line} {m.function}: {m.description}  | {m.source}")
        print(f"{len(mutants)} mutants")
        return 0

    os.chdir(ROOT)
    sys.path.insert(0, str(TESTS))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    test_files = sorted({t for files in targets.values() for t in files if (ROOT / t).exists()})
    traces_path = args.out / "traces.json"
    pid = os.fork()  # trace in a child: the parent must not have used DuckDB before forking
    if pid == 0:
        try:
            trace_tests(test_files, list(targets), traces_path)
        except SystemExit as exc:
            print(exc, file=sys.stderr)
            os._exit(1)
        os._exit(0)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        return 1
    traces = json.loads(traces_path.read_text())
    traced = time.monotonic() - started
    for name in WARM:
        importlib.import_module(name)
    run_mutants(mutants, traces, args.workers, args.show)
    result = summary(mutants)
    result["seconds"] = {"trace": round(traced, 1), "total": round(time.monotonic() - started, 1)}
    (args.out / "mutants.json").write_text(json.dumps([asdict(m) for m in mutants], indent=1))
    (args.out / "summary.json").write_text(json.dumps(result, indent=1))
    survivors = [m for m in mutants if m.status in ("survived", "no tests")]
    print(f"\n{len(survivors)} survivors:")
    for m in survivors:
        print(f"  {m.module}:{m.line} {m.function}: {m.description}  | {m.source}")
    print(
        f"\n{result['killed']} of {result['mutants']} mutants killed "
        f"({result['kill_rate']:.1%}); {result['errors']} not applicable; "
        f"{result['seconds']['total']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
