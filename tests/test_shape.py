"""The code's shape limits (docs/architecture.md): no module over 400 lines, no function over
60 lines, but for the tables and schemas listed in EXEMPT with the reason they are long."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("model", "core", "store", "config", "providers", "tasks", "notifiers", "transport", "worker",
            "simulator", "chaos", "benchmarks", "scripts")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

EXEMPT: dict[str, str] = {
    # "path/to/module.py" or "path/to/module.py:function": why it may be longer
}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _too_long(paths: list[Path] | None = None, root: Path = ROOT) -> list[str]:
    found = []
    for path in _modules() if paths is None else paths:
        rel = path.relative_to(root).as_posix()
        source = path.read_text()
        lines = source.count("\n")
        if lines > MAX_MODULE_LINES:
            found.append(f"{rel} ({lines} lines)")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{rel}:{node.name} ({length} lines)")
    return found


def _key(entry: str) -> str:
    return entry.split(" (", 1)[0]


def test_no_module_or_function_is_over_the_limits() -> None:
    over = [e for e in _too_long() if _key(e) not in EXEMPT]
    assert not over, "over the limits (split by job, or list in EXEMPT with the reason): " + ", ".join(over)


def test_every_exemption_is_still_needed() -> None:
    needed = {_key(e) for e in _too_long()}
    stale = sorted(set(EXEMPT) - needed)
    assert not stale, f"exempt but within the limits now (remove from EXEMPT): {stale}"


def test_the_check_finds_a_long_module_and_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    long_function = tmp_path / "long_function.py"
    long_function.write_text(f"def long() -> None:\n{body}\n")
    long_module = tmp_path / "long_module.py"
    long_module.write_text("\n".join(f"x{i} = {i}" for i in range(MAX_MODULE_LINES + 1)) + "\n")
    within = tmp_path / "within.py"
    within.write_text("def short() -> None:\n    pass\n")
    found = _too_long([long_function, long_module, within], root=tmp_path)
    assert found == [f"long_function.py:long ({MAX_FUNCTION_LINES + 1} lines)",
                     f"long_module.py ({MAX_MODULE_LINES + 1} lines)"]
