"""`python -m tests.support.domain_mutants` (`make mutate`): mutate `tracker/domain` one small
change at a time and run the unit tests against each mutant; report the score.

A mutant flips one comparison (`<` and `<=`, `==` and `!=`, `in` and `not in`, `is` and
`is not`), swaps `and` and `or`, drops a `not`, swaps `+` and `-`, `|` and `&`, `max` and `min`,
flips `True` and `False`, or adds one to a whole number: in function bodies and module-level
values (the rule's tables), never in annotations, docstrings or asserts. Each is applied to a
copy of this checkout and the unit tests run there, stopping at the first failure (a killed
mutant). A mutant every test passes survived: it is either a gap in the tests, or equivalent
(no behaviour can tell it apart), and then it is listed, with why, in EQUIVALENT below.

    python -m tests.support.domain_mutants [--jobs 2] [--only device.py,task.py] [--list]
        [--tests tests/unit/test_convergence.py]

Exits 1 when a mutant survives that EQUIVALENT does not explain.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "tracker" / "domain"
# The domain's own tests first (a killed mutant stops at its first failing test), then the rest.
TESTS = (
    "tests/unit/test_device_machine.py",
    "tests/unit/test_task_machine.py",
    "tests/unit/test_projection_fold.py",
    "tests/unit/test_rollup.py",
    "tests/unit/test_activity.py",
    "tests/unit/test_delivery.py",
    "tests/unit/test_field_tiers.py",
    "tests/unit/test_row_codecs.py",
    "tests/unit/test_convergence.py",
    "tests/unit",
)
SECONDS = 300  # a mutant that loops for ever is killed by the clock
NOT_COPIED = (".git", ".venv", "build", "__pycache__", ".tracker", "*.png", ".mypy_cache")

FLIPS: dict[type[ast.AST], type[ast.AST]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.And: ast.Or,
    ast.Or: ast.And,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}
CALLS = {"max": "min", "min": "max"}

# Mutants no test can kill because no behaviour differs, keyed by (module, the line as written,
# the expression before and after, as `ast.unparse` writes them): why each is equivalent.
_TIE = "the tie this makes is broken by name the way the rank broke it"
EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    (
        "delivery.py",
        "for problem in error.errors(include_url=False, include_input=False)",
        "False",
        "True",
    ): "a refusal's details read only loc, msg and type of each error; url or input added "
    "to them changes nothing",
    (
        "device.py",
        "if track is not None and before is not None and _ranks_alike(before, sub):",
        "track is not None",
        "track is None",
    ): "the fast path only saves work: without it the full computation gives the same track",
    (
        "notifications.py",
        'model_config = ConfigDict(strict=True, extra="ignore", frozen=True)',
        "True",
        "False",
    ): "strict: for what JSON can carry, lax mode refuses what strict mode refuses for these "
    "fields (pydantic 2 makes no number a string; only bytes differ, which a decoded body never "
    "holds); frozen: nothing assigns to a notification",
    (
        "precedence.py",
        "if len(subs) <= 1:",
        "len(subs) <= 1",
        "len(subs) < 1",
    ): "with one sub-operation the general path picks that one too",
    (
        "precedence.py",
        "if len(pool) > 1:",
        "len(pool) > 1",
        "len(pool) >= 1",
    ): "the version rule given one candidate returns it",
    (
        "precedence.py",
        "return True  # it alone",
        "True",
        "False",
    ): "with one placed sub-operation, the pairwise fallback and the bridge count give the "
    "same candidates as the trail of no steps",
    (
        "recorded.py",
        'N_co = TypeVar("N_co", bound=Notification, covariant=True)',
        "True",
        "False",
    ): "variance matters to the type checker only",
    (
        "suboperation.py",
        (
            'PROGRESS: dict[UpgradeState, int] = {"downloading": 1, "downloaded": 2, '
            '"updating": 3, "idle": 4}'
        ),
        "4",
        "5",
    ): "idle stays last",
    (
        "suboperation.py",
        "digest = hashlib.blake2b(repr(_content(said)).encode(), digest_size=8).hexdigest()",
        "8",
        "9",
    ): "marks are compared only with marks made the same way (migration 015 rebuilds them)",
    (
        "suboperation.py",
        "return _rank(new) > _rank(held)",
        "_rank(new) > _rank(held)",
        "_rank(new) >= _rank(held)",
    ): "equal ranks mean equal content, which `seen` has already stopped as a repeat",
    (
        "suboperation.py",
        "if state is None or PROGRESS[said] > PROGRESS[state]:",
        "PROGRESS[said] > PROGRESS[state]",
        "PROGRESS[said] >= PROGRESS[state]",
    ): "an equal progress is the same state, which `seen` has already stopped as a repeat",
    ("task.py", '"Initializing": 0,', "0", "1"): _TIE,
    ("task.py", '"Processing": 2,', "2", "3"): _TIE,
    ("task.py", '"Success": 4,', "4", "5"): _TIE,
    ("task.py", '"PartialSuccess": 2,', "2", "3"): _TIE,
    ("task.py", '"Processing": 3,', "3", "4"): _TIE,
    ("task.py", '"Success": 5,', "5", "6"): _TIE,
    (
        "task.py",
        "retried = first_run_at is not None and first_run_at.replace(microsecond=0) < second",
        "0",
        "1",
    ): "a first run in the last second stays not before it, one in an earlier second before",
    (
        "task.py",
        'return event.status, event.request_id or "", event.status_desc or ""',
        "event.status_desc or ''",
        "event.status_desc and ''",
    ): "two events of one second with one status and request id are one delivery (`seen`): "
    "the description never decides",
    (
        "task.py",
        "elif when.truncated() < held:",
        "when.truncated() < held",
        "when.truncated() <= held",
    ): "equality is taken by the branch before",
}
# Each module's own tests first: most mutants fall to them within a second or two.
FIRST: dict[str, tuple[str, ...]] = {
    "precedence.py": ("tests/unit/test_precedence.py",),
    "suboperation.py": ("tests/unit/test_device_machine.py",),
    "task.py": ("tests/unit/test_task_machine.py",),
    "notifications.py": ("tests/unit/test_field_tiers.py",),
    "delivery.py": ("tests/unit/test_delivery.py",),
    "operation.py": ("tests/unit/test_rollup.py", "tests/unit/test_projection_fold.py"),
    "activity.py": ("tests/unit/test_activity.py",),
}


@dataclass(frozen=True)
class Mutant:
    module: str  # file name within tracker/domain
    line: int
    source: str  # the line as written (stripped)
    before: str  # the expression changed, as `ast.unparse` writes it
    after: str  # ...and what it became
    mutated: str  # the module's text with the mutation (ast.unparse'd)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.module, self.source, self.before, self.after

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.before}  ->  {self.after}"


class _Sites(ast.NodeVisitor):
    """Every node a mutation applies to, in a fixed order."""

    def __init__(self) -> None:
        self.sites: list[tuple[ast.AST, int]] = []  # (node, which change: index into its ops)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for statement in _body(node):
            self.visit(statement)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]  # noqa: N815

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for statement in _body(node):
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                self.visit(statement)
            elif isinstance(statement, ast.Assign):
                self.visit(statement.value)  # class-level values, not annotated fields

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)  # the value, never the annotation

    def visit_Assert(self, _node: ast.Assert) -> None:
        return  # invariants: a mutant would only raise

    def visit_ImportFrom(self, _node: ast.ImportFrom) -> None:
        return

    def visit_Compare(self, node: ast.Compare) -> None:
        self.sites += [(node, i) for i, op in enumerate(node.ops) if type(op) in FLIPS]
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        self.sites.append((node, 0))
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) in FLIPS:
            self.sites.append((node, 0))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self.sites.append((node, 0))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in CALLS:
            self.sites.append((node, 0))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, bool) or (isinstance(node.value, int) and node.value >= 0):
            self.sites.append((node, 0))


def _body(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[ast.stmt]:
    """The body without its docstring."""
    body = node.body
    first = body[0] if body else None
    docstring = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    return body[1:] if docstring else body


def _mutate(node: ast.AST, which: int) -> None:
    """Apply the change in place (the caller works on a fresh tree)."""
    if isinstance(node, ast.Compare):
        node.ops[which] = FLIPS[type(node.ops[which])]()  # type: ignore[call-overload]
    elif isinstance(node, ast.BoolOp | ast.BinOp):
        node.op = FLIPS[type(node.op)]()  # type: ignore[assignment]
    elif isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        node.func.id = CALLS[node.func.id]
    elif isinstance(node, ast.Constant):
        value = node.value
        assert isinstance(value, int)  # only booleans and whole numbers are sites
        node.value = not value if isinstance(value, bool) else value + 1


def mutants(path: Path) -> Iterator[Mutant]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    count = len(_sites(ast.parse(text)))
    for number in range(count):
        tree = ast.parse(text)
        node, which = _sites(tree)[number]
        before = ast.unparse(node)
        if isinstance(node, ast.UnaryOp):  # `not x` becomes `x`
            _replace(_parent_of(tree, node), node, node.operand)
            after = ast.unparse(node.operand)
        else:
            _mutate(node, which)
            after = ast.unparse(node)
        line = getattr(node, "lineno", 0)
        source = lines[line - 1].strip()
        yield Mutant(path.name, line, source, _short(before), _short(after), ast.unparse(tree))


def _short(code: str) -> str:
    return code if len(code) <= 90 else code[:87] + "..."


def _sites(tree: ast.Module) -> list[tuple[ast.AST, int]]:
    finder = _Sites()
    for statement in tree.body:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # the module's docstring
        finder.visit(statement)
    return finder.sites


def _parent_of(tree: ast.AST, child: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        for value in ast.iter_child_nodes(node):
            if value is child:
                return node
    raise ValueError("no parent")


def _replace(parent: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for name, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, name, new)
        elif isinstance(value, list):
            parent.__dict__[name] = [new if v is old else v for v in value]


def fails_tests(checkout: Path, tests: tuple[str, ...]) -> bool:
    """Whether the tests fail in `checkout` (stopping at the first failure)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=checkout,
            env=env,
            capture_output=True,
            timeout=SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return True
    return done.returncode != 0


def run(mutant: Mutant, checkout: Path, tests: tuple[str, ...]) -> bool:
    """Whether the tests kill `mutant` (run in `checkout`, a copy of this one)."""
    target = checkout / "tracker" / "domain" / mutant.module
    original = target.read_text(encoding="utf-8")
    target.write_text(mutant.mutated, encoding="utf-8")
    try:
        killed = fails_tests(checkout, (*FIRST.get(mutant.module, ()), *tests))
    finally:
        target.write_text(original, encoding="utf-8")
    print(f"{'killed  ' if killed else 'SURVIVED'}  {mutant}", file=sys.stderr, flush=True)
    return killed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", help="comma-separated module names (device.py,task.py)")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument(
        "--tests", help="comma-separated test files to run instead of the unit tests"
    )
    args = parser.parse_args()
    modules = sorted(p for p in DOMAIN.glob("*.py") if p.name != "__init__.py")
    if args.only:
        modules = [p for p in modules if p.name in args.only.split(",")]
    found = [m for path in modules for m in mutants(path)]
    tests = tuple(args.tests.split(",")) if args.tests else TESTS
    if args.list:
        for m in found:
            print(m)
        return 0
    with tempfile.TemporaryDirectory(prefix="tracker-mutants-") as scratch:
        checkouts = []
        for n in range(args.jobs):
            copy = Path(scratch) / f"checkout-{n}"
            shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(*NOT_COPIED))
            checkouts.append(copy)
        # Every mutant must be killed by the tests, not by a copy they cannot pass unmutated.
        if fails_tests(checkouts[0], tests):
            print("the unit tests fail on an unmutated copy: fix that first", file=sys.stderr)
            return 2
        started = time.monotonic()
        free: Queue[Path] = Queue()
        for checkout in checkouts:
            free.put(checkout)

        def in_a_free_checkout(mutant: Mutant) -> bool:
            checkout = free.get()  # one mutant at a time in each copy
            try:
                return run(mutant, checkout, tests)
            finally:
                free.put(checkout)

        with ThreadPoolExecutor(args.jobs) as pool:
            killed = list(pool.map(in_a_free_checkout, found))
    survivors = [m for m, k in zip(found, killed, strict=True) if not k]
    explained = [m for m in survivors if m.key in EQUIVALENT]
    gaps = [m for m in survivors if m.key not in EQUIVALENT]
    considered = len(found) - len(explained)
    print(f"{len(found)} mutants of tracker/domain in {time.monotonic() - started:.0f} s")
    score = 100 * sum(killed) / considered
    print(f"killed {sum(killed)} of {considered} not equivalent ({score:.1f}%)")
    for m in explained:
        print(f"  equivalent  {m}\n              {EQUIVALENT[m.key]}")
    for m in gaps:
        print(f"  SURVIVED    {m}")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
