"""ALAE models built from ``alae_fast.nn`` layers.

``from_preset(name)`` builds a named model (``list_presets()``); a config dataclass
(``MLPALAEConfig``, ``StyleALAEConfig``) builds one with ``build_model(config)`` and round-trips through JSON
(``config.to_json()``, ``ModelConfig.from_json(text)``). Every model has ``mapping`` (F),
``generator`` (G), ``encoder`` (E), ``discriminator`` (D) and ``encode``/``decode``/
``generate``/``reconstruct``; ``model.set_impl('ref')`` runs it on the reference ops.
``python -m alae_fast.models`` prints the parameter counts of every preset.
``load_official(path, config=None, ema=True)`` loads a checkpoint of the official ALAE code
(podgorskiy/ALAE) into the matching model (see ``alae_fast.models.official``).
"""

from .config import ALAEConfig, MLPALAEConfig, ModelConfig, config_kinds, register_config
from .style_config import StyleALAEConfig
from .presets import (build_model, describe_presets, from_preset, list_presets, parameter_counts,
                      parameter_table, preset_config, register_model, register_preset)
from .base import ALAEModel
from .mlp_alae import MLPALAE
from .style_alae import StyleALAE
from .official import OfficialCheckpointError, load_official

__all__ = [
    "ALAEConfig", "ALAEModel", "MLPALAE", "MLPALAEConfig", "ModelConfig", "OfficialCheckpointError", "StyleALAE",
    "StyleALAEConfig", "load_official",
    "build_model", "config_kinds", "describe_presets", "from_preset", "list_presets", "parameter_counts",
    "parameter_table", "preset_config", "register_config", "register_model", "register_preset",
]
