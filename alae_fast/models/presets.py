"""Named model presets and the config -> model registry.

    from alae_fast.models import from_preset, list_presets
    model = from_preset("mnist-mlp")                      # the paper's MNIST MLP ALAE
    model = from_preset("mnist-mlp", mapping_layers=8)    # with a field changed
    with torch.device("meta"):                            # shapes only, no memory
        big = from_preset(name)

Adding a model kind: decorate its class with ``@register_model(ItsConfig)``. Adding a preset:
``register_preset("name", ItsConfig(...), "one line of description")``, at import of the
module that defines the config, or in ``_builtin_presets`` below.
"""

from __future__ import annotations

from torch import nn

from .config import ModelConfig, MLPALAEConfig

_MODELS: dict[type, type] = {}
_PRESETS: dict[str, tuple[ModelConfig, str]] = {}


def register_model(config_cls: type[ModelConfig]):
    """Class decorator: ``build_model(config)`` builds this class for configs of ``config_cls``.

    The model class is called as ``model_cls(config)``.
    """
    if not (isinstance(config_cls, type) and issubclass(config_cls, ModelConfig)):
        raise TypeError(f"register_model: config_cls must be a ModelConfig subclass; got {config_cls!r}")

    def decorate(model_cls):
        if not (isinstance(model_cls, type) and issubclass(model_cls, nn.Module)):
            raise TypeError(f"register_model: expected an nn.Module subclass; got {model_cls!r}")
        if config_cls in _MODELS and _MODELS[config_cls] is not model_cls:
            raise ValueError(f"register_model: {config_cls.__name__} already builds {_MODELS[config_cls].__name__}")
        _MODELS[config_cls] = model_cls
        return model_cls

    return decorate


def build_model(config: ModelConfig) -> nn.Module:
    """The model registered for ``type(config)`` (or its nearest registered base), built from config."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model: config must be a ModelConfig; got {type(config).__name__}")
    for cls in type(config).__mro__:
        if cls in _MODELS:
            return _MODELS[cls](config)
    raise ValueError(f"build_model: no model is registered for {type(config).__name__}; "
                     f"known: {sorted(c.__name__ for c in _MODELS)}")


def register_preset(name: str, config: ModelConfig, description: str = "", *, overwrite: bool = False) -> None:
    """Registers ``config`` under ``name``; ``overwrite=True`` replaces an existing preset."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"register_preset: name must be a non-empty string without surrounding spaces; got {name!r}")
    if not isinstance(config, ModelConfig):
        raise TypeError(f"register_preset: config must be a ModelConfig; got {type(config).__name__}")
    if not isinstance(description, str):
        raise TypeError(f"register_preset: description must be a str; got {type(description).__name__}")
    if name in _PRESETS and not overwrite:
        raise ValueError(f"register_preset: preset {name!r} already exists (pass overwrite=True to replace it)")
    _PRESETS[name] = (config, description)


def list_presets() -> list[str]:
    """The registered preset names, sorted."""
    return sorted(_PRESETS)


def describe_presets() -> dict[str, str]:
    """Preset name -> its one-line description, sorted by name."""
    return {name: _PRESETS[name][1] for name in sorted(_PRESETS)}


def preset_config(name: str, **overrides) -> ModelConfig:
    """The config of preset ``name``, with ``overrides`` applied to its fields."""
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {list_presets()}")
    config = _PRESETS[name][0]
    return config.replace(**overrides) if overrides else config


def from_preset(name: str, **overrides) -> nn.Module:
    """A freshly initialised model of preset ``name`` (see ``list_presets()``), with config
    ``overrides`` applied. Parameters are created on torch's current default device (use
    ``with torch.device('meta'):`` for shapes only) in the default dtype."""
    return build_model(preset_config(name, **overrides))


def _builtin_presets() -> None:
    register_preset("mnist-mlp", MLPALAEConfig(),
                    "MLP ALAE of the paper's MNIST experiment: 28x28x1, latent 50, E/G 1024-1024, "
                    "F 6 layers, D 3 layers")


_builtin_presets()
