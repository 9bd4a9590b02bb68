"""Every relative link and #anchor in README.md and docs/*.md points at a file that exists and a heading it has.

Anchors are GitHub's: the heading text without markup, lower-cased, punctuation other than '-' and '_' dropped,
spaces turned into '-', a repeated heading suffixed -1, -2, ... Links inside code (fenced blocks, `spans`) are
not links and are skipped, as are absolute URLs.
"""
import re

import pytest

from tests.helpers import REPO

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def user_docs():
    return [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


def prose_lines(text):
    """(line number, line) outside fenced code blocks."""
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield number, line


def github_anchor(heading):
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # [text](url) -> text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    seen, result = {}, set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = github_anchor(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(path):
    """(line number, target) of every link; a link's text may run over several lines."""
    lines = dict(prose_lines(path.read_text(encoding="utf-8")))
    prose = "\n".join(CODE_SPAN.sub("", lines.get(n, "")) for n in range(1, max(lines, default=0) + 1))
    for match in LINK.finditer(prose):
        yield prose.count("\n", 0, match.start()) + 1, match.group(1)


def broken_links(path, repo=REPO):
    """Messages for the links of one Markdown file that point nowhere."""
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):   # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(repo)}:{number}: {target}"
        if not destination.exists():
            problems.append(f"{where}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            problems.append(f"{where}: no heading with anchor #{anchor} in {destination.name}")
    return problems


def test_github_anchor_rules():
    assert github_anchor("Time to quality: a CPU recipe") == "time-to-quality-a-cpu-recipe"
    assert github_anchor("Image score (`--image_score`)") == "image-score---image_score"
    assert github_anchor("4. Time per category") == "4-time-per-category"
    assert github_anchor("Training step (bench/train_step.py)") == "training-step-benchtrain_steppy"


def test_checker_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "A.md").write_text("# A\n\n## Same\n\n## Same\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/A.md#same-1) [self](#top) [gone](docs/B.md) [two\nlines](docs/A.md#same-2)\n"
        "`[code](docs/C.md)` [web](https://example.com/x#y)\n"
        "```\n[fenced](docs/D.md)\n```\n# Top\n", encoding="utf-8")
    problems = broken_links(readme, repo=tmp_path)
    assert len(problems) == 2, problems
    assert "docs/B.md: no such file" in problems[0]
    assert "README.md:1: docs/A.md#same-2: no heading" in problems[1]


@pytest.mark.parametrize("path", user_docs(), ids=lambda p: str(p.relative_to(REPO)))
def test_user_docs_links_resolve(path):
    assert broken_links(path) == []
