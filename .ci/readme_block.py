"""Print one fenced code block of the README, as CI runs it: the Nth block of LANGUAGE
in the section HEADING (``## HEADING``).

    python .ci/readme_block.py Quickstart bash 1      # the Quickstart's first command
    python .ci/readme_block.py "A flow" python 1      # the first flow example
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def section_blocks(text: str, heading: str, language: str) -> list[str]:
    """The code blocks of ``language`` in section ``## heading``, in order."""
    parts = re.split(rf"^## {re.escape(heading)}\n", text, maxsplit=1, flags=re.MULTILINE)
    if len(parts) != 2:
        raise SystemExit(f"README.md has no section '## {heading}'.")
    section = re.split(r"^## ", parts[1], maxsplit=1, flags=re.MULTILINE)[0]
    return re.findall(rf"^```{language}\n(.*?)^```", section, re.DOTALL | re.MULTILINE)


def main(heading: str, language: str, number: str) -> None:
    blocks = section_blocks(README.read_text(encoding="utf-8"), heading, language)
    if len(blocks) < int(number):
        raise SystemExit(f"README.md's section '## {heading}' has {len(blocks)} {language} "
                         f"block(s), not {number}.")
    sys.stdout.write(blocks[int(number) - 1])


if __name__ == "__main__":
    main(*sys.argv[1:])
