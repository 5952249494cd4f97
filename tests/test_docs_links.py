"""Every relative link and picture in the project's Markdown (README.md and the notes under
benchmarks/results/), and every source path it names in backticks (`benchmarks/photo_tiles.py`),
names a file that exists: a renamed script, result or picture would otherwise leave a broken
reference that no other test reads."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# a path from the repository root in backticks; build products (the compiled _C.so) excluded
_SOURCE_PATH = re.compile(r"`((?:alae_fast|benchmarks|tests|csrc|\.ci)/[\w./-]+)`")


def _documents() -> list[Path]:
    docs = [ROOT / "README.md", *sorted((ROOT / "benchmarks" / "results").glob("*.md"))]
    return [d for d in docs if d.is_file()]


def _relative_targets(text: str) -> list[str]:
    out = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        out.append(target.split("#", 1)[0])
    return out


def test_the_link_pattern_finds_links_pictures_and_skips_urls_and_anchors():
    text = ("see [a](docs/a.md#part), ![pic](img/p.png) and [web](https://example.org/x), "
            "[here](#section), [mail](mailto:x@y.z)")
    assert _relative_targets(text) == ["docs/a.md", "img/p.png"]


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_name_files_that_exist(doc):
    missing = [t for t in _relative_targets(doc.read_text(encoding="utf-8")) if not (doc.parent / t).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} links to missing files: {missing}"


def test_the_path_pattern_takes_root_paths_in_backticks_only():
    text = "run `benchmarks/photo_tiles.py DIR` or `benchmarks/photo_tiles.py`, see `alae_fast/ops` and alae_fast/cli.py"
    assert _SOURCE_PATH.findall(text) == ["benchmarks/photo_tiles.py", "alae_fast/ops"]


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_source_paths_in_backticks_exist(doc):
    named = [t for t in _SOURCE_PATH.findall(doc.read_text(encoding="utf-8")) if not t.endswith(".so")]
    missing = [t for t in named if not (ROOT / t).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} names missing files: {missing}"
