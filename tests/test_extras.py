"""The install hints of the optional extras (alae_fast._extras) against pyproject.toml itself, and
the commands that print them when an extra is missing."""
import importlib.metadata
import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest

from alae_fast._extras import install_hint

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _declared() -> dict[str, list[str]]:
    return tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]


def _installed_from_this_tree() -> bool:
    try:
        extras = importlib.metadata.metadata("alae_fast").get_all("Provides-Extra") or []
    except importlib.metadata.PackageNotFoundError:
        return False
    return sorted(extras) == sorted(_declared())


@pytest.mark.skipif(not _installed_from_this_tree(), reason="alae_fast's metadata is not this tree's")
@pytest.mark.parametrize("extra", sorted(_declared()))
def test_each_hint_installs_the_extras_own_requirements(extra):
    hint = install_hint(extra)
    assert hint.endswith(f" (the [{extra}] extra)")
    words = shlex.split(hint[:-len(f" (the [{extra}] extra)")])
    assert words[:2] == ["pip", "install"] and words[2:] == _declared()[extra], hint
    assert "alae_fast[" not in hint  # the package is not on an index: pip would look for it there


def test_an_extra_that_does_not_exist_is_refused_by_name():
    with pytest.raises(ValueError, match=r"extra: alae_fast has no extra 'ap'; it has \[.*'app'"):
        install_hint("ap")


def test_without_metadata_the_hint_is_the_source_folders_install(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "requires", missing)
    assert install_hint("app") == "pip install --no-build-isolation '.[app]' in the alae_fast source folder"


def test_the_loss_curve_plot_without_matplotlib_names_the_plot_hint(tmp_path, monkeypatch):
    from alae_fast.inference.plots import plot_loss_curves

    log = tmp_path / "log.jsonl"
    log.write_text('{"kimg": 0.1, "loss_d": 1.5, "loss_g": 0.7}\n{"kimg": 0.2, "loss_d": 1.4, "loss_g": 0.8}\n')
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError) as e:
        plot_loss_curves(log, tmp_path / "curves.png")
    assert str(e.value) == f"the loss-curve plot needs matplotlib ({install_hint('plot')})"
    assert not (tmp_path / "curves.png").exists()


def test_an_official_yaml_without_pyyaml_names_the_official_hint(tmp_path, monkeypatch):
    from alae_fast.models.official_io import read_official_yaml

    cfg = tmp_path / "ffhq.yaml"
    cfg.write_text("MODEL:\n  LATENT_SPACE_SIZE: 512\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ImportError, match=re.escape("PyYAML: " + install_hint("official"))):
        read_official_yaml(cfg)
