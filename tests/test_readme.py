"""The README's Python blocks run as written (sketches, marked as such, at least compile)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
SKETCH = "# a sketch"


def test_the_readme_has_runnable_blocks():
    assert sum(not b.startswith(SKETCH) for b in BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block(index, tmp_path, monkeypatch, capsys):
    code = BLOCKS[index]
    compile(code, f"README.md block {index}", "exec")
    if code.startswith(SKETCH):
        return
    monkeypatch.chdir(tmp_path)
    # the same code with fewer epochs: this checks that it runs, RESULTS.md has the numbers
    exec(compile(re.sub(r"epochs=\d+", "epochs=2", code), f"README.md block {index}", "exec"), {})
    assert capsys.readouterr().out.strip()  # every runnable block prints its result


def test_the_ten_lines_print_the_numbers_their_comment_states(capsys):
    """The first example runs at its full length and prints what the README says it prints."""
    code = next(b for b in BLOCKS if "recipe = dict(" in b)
    stated = [float(v) for v in re.findall(r"\d\.\d{3}", code.strip().splitlines()[-1].split("#")[-1])]
    exec(compile(code, "README.md ten lines", "exec"), {})
    printed = [float(v) for v in re.findall(r"\d\.\d{3}", capsys.readouterr().out)]
    assert len(stated) == 2 and printed == pytest.approx(stated, abs=0.005)
