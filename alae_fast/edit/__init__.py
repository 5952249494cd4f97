"""Attribute editing in W, as the official ALAE does it (podgorskiy/ALAE, 42bcf2e).

- :func:`edit_w`, :func:`direction_coefficients` (:mod:`.apply`): the demo's arithmetic on w;
- :func:`load_direction`, :func:`fit_direction`, :func:`fit_class_directions`
  (:mod:`.directions`): official ``direction_<name>.npy`` files and the official LinearSVC fit;
- :mod:`.commands`: what ``alae-fast edit`` and ``alae-fast directions`` run on a checkpoint;
- :mod:`.provenance`: the record of which checkpoint ``alae-fast directions`` fitted on, which
  ``edit`` and ``serve`` compare with the checkpoint they load.

Typical use on an encoded image::

    w = model.encode(x, lod, blend)                                   # [N, latent]
    d = {"smile": load_direction("principal_directions/direction_1.npy", model.latent_size)}
    ws = edit_w(w, d, {"smile": 10.0}, model.w_avg, model.num_ws)     # [N, num_ws, latent]
    img = model.decode(ws, lod, blend, noise="zero")
"""

from .apply import DEMO_LAYERS, EDIT_LAYERS, direction_coefficients, edit_w
from .directions import (OFFICIAL_DIRECTION_NAMES, find_direction_file, fit_class_directions, fit_direction,
                         load_direction, save_direction)

__all__ = ["DEMO_LAYERS", "EDIT_LAYERS", "direction_coefficients", "edit_w", "OFFICIAL_DIRECTION_NAMES",
           "find_direction_file", "fit_class_directions", "fit_direction", "load_direction", "save_direction"]
