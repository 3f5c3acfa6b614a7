"""Exercise probes: what a solution notebook's kernel runs after the notebook itself, and what each must show.

- Every exercise's stub: "not attempted".
- Every acceptable variant (tests/planted, `Acceptable`): passes.
- Every planted wrong answer (`Planted`): fails, with feedback that names its mistake and quotes no line of the
  solution.
- In a chapter of three exercises or more: the third exercise's solution, run after wrong answers to the first two,
  still passes (one exercise's failure never changes another's verdict).

A probe is a list of steps; a step is three cells (forget the names the exercise cell defines, run the exercise cell
with an answer, run its check cell again), and the probe's verdict is its last check's. Stubs run first, while no
failed check has left anything in the kernel.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from course import exercises
from sandbox.checks import contract

CELLS_PER_STEP = 3
SOLUTION = object()  # a step's answer: the solution block as it is


@dataclass(frozen=True)
class Step:
    exercise: str
    answer: object  # the code of an answer, None for the stub, or SOLUTION


@dataclass(frozen=True)
class Probe:
    exercise: str  # the exercise whose verdict is judged (the last step's)
    name: str
    expected: str  # "passed", "failed" or "not attempted"
    steps: tuple[Step, ...]
    planted: object = None  # the Planted answer whose feedback is judged


def exercise_cells(nb) -> dict[str, tuple]:
    """{exercise id: (the cell holding its solution block, its check cell)}, in exercise order."""
    blocks = [c for c in nb.cells if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source]
    checks = [c for c in nb.cells if contract.CHECK_TAG in c.metadata.get("tags", [])]
    ids = exercises.exercise_ids(nb)
    assert len(blocks) == len(checks) == len(ids), "one solution block and one check cell per exercise"
    return {ex: (block, check) for ex, block, check in zip(ids, blocks, checks, strict=True)}


def probes(nb, chapter: str) -> list[Probe]:
    from tests.planted import ACCEPTABLE, PLANTED

    ids = list(exercise_cells(nb))
    wrong, fine = PLANTED.get(chapter, {}), ACCEPTABLE.get(chapter, {})
    found = [Probe(ex, "stub", "not attempted", (Step(ex, None),)) for ex in ids]
    found += [Probe(ex, f"acceptable: {a.variant}", "passed", (Step(ex, a.code),)) for ex in ids
              for a in fine.get(ex, [])]
    found += [Probe(ex, p.mistake, "failed", (Step(ex, p.code),), p) for ex in ids for p in wrong.get(ex, [])]
    if len(ids) >= 3 and all(wrong.get(ex) for ex in ids[:2]):
        first, second, judged = ids[0], ids[1], ids[2]
        found.append(Probe(judged, f"isolation: the solution after wrong answers to {first} and {second}", "passed",
                           (Step(first, _leaky(wrong[first]).code), Step(second, _leaky(wrong[second]).code),
                            Step(judged, SOLUTION))))
    return found


def _leaky(answers: list) -> object:
    """The wrong answer most likely to leave something behind for the next check: a coroutine never awaited (not
    one that awaits in the wrong order, which leaves nothing and only costs time)."""
    return next((p for p in answers if p.about == "async" and "await" in (p.expect + p.mistake)
                 and not p.mistake.startswith("awaits ")), answers[0])


def replace_block(source: str, answer: str) -> str:
    """The exercise cell with its solution block replaced by `answer`, at the block's indentation."""
    return exercises.BLOCK.sub(lambda m: textwrap.indent(answer, m.group(1)) + "\n", source)


def forget(source: str) -> str:
    """Code that removes the names a cell defines at its top level, so that a probe of an exercise meets none of
    an earlier answer's definitions (a stub that raises before it defines its class must leave no class at all,
    as in a learner's fresh notebook)."""
    try:
        tree = compile(source, "<cell>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError:  # a cell magic (%%writefile): it defines files, not names
        return ""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return "".join(f"globals().pop({name!r}, None)\n" for name in sorted(names))


def sources(nb, probe: Probe) -> list[tuple[str, bool]]:
    """The cells one probe queues, each as (source, may fail): CELLS_PER_STEP per step."""
    cells = exercise_cells(nb)
    queued = []
    for step in probe.steps:
        block, check = cells[step.exercise]
        if step.answer is SOLUTION:
            answer = block.source
        elif step.answer is None:
            answer = exercises.stub(block.source)
        else:
            answer = replace_block(block.source, step.answer)
        queued += [(forget(block.source), True), (answer, True), (check.source, True)]
    return queued


def solution_fragments(block_source: str, shortest: int = 12) -> list[str]:
    """The expressions of a solution block, as feedback must never quote them: each line's value (the right-hand
    side of an assignment, what is returned or awaited), when it is at least `shortest` characters long."""
    match = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", block_source, re.S)
    fragments = []
    for line in (match.group(1) if match else "").splitlines():
        code = line.split("  #", 1)[0].strip()
        try:
            node = ast.parse(code, mode="exec").body[0]
        except (SyntaxError, IndexError):  # part of a statement that spans lines: the line itself
            value = code
        else:
            value = ast.get_source_segment(code, getattr(node, "value", None) or node) or code
        value = re.sub(r"^(await|return)\s+", "", value.strip())
        if len(value) >= shortest and re.search(r"[(\[{]", value):  # an expression, not a bare name
            fragments.append(value)
    return fragments

