"""The checkout itself: no tracked file carries an unresolved merge.

A merge once committed conflict markers into an SQL template; SQL templates are read at run
time, so the suite only failed where a test happened to render that task's paired query.
"""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKERS = ("<" * 7 + " ", ">" * 7 + " ")  # spelled so this file does not carry them


def test_no_tracked_file_has_merge_conflict_markers():
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    unresolved = []
    for name in filter(None, listed):
        path = ROOT / name.decode()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary files, and files deleted in the working tree
        unresolved += [
            f"{name.decode()}:{number}"
            for number, line in enumerate(lines, 1)
            if line.startswith(MARKERS)
        ]
    assert not unresolved, f"merge conflict markers at {unresolved}"
