"""docs/runbook.md: every `eval-pipelines` command it tells an on-call engineer to type parses
with today's command line (a renamed flag or subcommand fails here, not during an incident)."""

import re
import shlex
from pathlib import Path

from eval_pipelines.cli import build_parser

RUNBOOK = Path(__file__).resolve().parents[1] / "docs" / "runbook.md"


def runbook_commands() -> list[str]:
    """Every ``eval-pipelines ...`` command, in code blocks and inline code."""
    text = RUNBOOK.read_text().replace("\\\n", " ")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    lines += re.findall(r"`(eval-pipelines [^`]+)`", text)
    return [line for line in lines if line.startswith("eval-pipelines ")]


def test_every_eval_pipelines_command_in_the_runbook_parses():
    commands = runbook_commands()
    assert len(commands) >= 4
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    for command in commands:
        words = shlex.split(command.split("#")[0])[1:]
        if words == ["--help"]:
            continue
        if len(words) == 1:  # a command named in the text ("`eval-pipelines run` exits 4")
            assert words[0] in subcommands, command
            continue
        args = parser.parse_args(words)  # a usage error exits the test with status 64
        assert args.func is not None, command
