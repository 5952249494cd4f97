"""Reading files of the official ALAE implementation (podgorskiy/ALAE) without running their code.

An official checkpoint is what its ``Checkpointer.save`` writes with ``torch.save``:
``{'models': {name: state_dict}, 'auxiliary': {optimisers, scheduler, tracker}}``. The
tracker pickles objects of the official ``tracker`` module (``tracker.RunningMeanTorch``),
which a user's environment does not have, and any pickle can name any callable.

``read_official_checkpoint`` therefore loads with ``torch.load(weights_only=True)``, torch's
restricted unpickler, after listing the globals the file names that torch does not allow
(``torch.serialization.get_unsafe_globals_in_checkpoint``, which reads the pickle without
running it) and allowing each of them only as an INERT placeholder class of the same name:
calling, constructing or restoring a placeholder stores nothing and runs nothing. So the
tensors and containers load, the tracker's objects become placeholders, and a ``__reduce__``
that names, say, ``pathlib.Path.touch`` or ``builtins.exec`` builds a placeholder instead of
running. A file naming anything of the modules torch blocks outright (``os``, ``sys``,
``posix``, ``nt``: ``os.system``...) is refused with an error: no checkpoint needs them.

``read_official_yaml`` reads an official ``configs/*.yaml`` (yacs keys) with PyYAML's
``safe_load`` (the ``[official]`` extra) and refuses a key the official code does
not define, as its yacs ``merge_from_file`` does ("Non-existent config key"): a misspelt key
would otherwise leave its setting at the default without a word.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from .._extras import install_hint
from ..errors import UserError, check_regular_file
from ..zip_integrity import checkpoint_damage

__all__ = ["OfficialCheckpointError", "InertObject", "read_official_checkpoint", "read_official_yaml"]


class OfficialCheckpointError(UserError):
    """A file that cannot be used as an official ALAE checkpoint or config. The message is one
    line that starts with the file's path and says what was wrong."""


class InertObject:
    """Stands in for a class or function named by a pickle that is not a tensor or container.

    Accepts any constructor or call arguments and any pickled state, keeps none of it and
    does nothing; ``pickled_as`` on the class says what the pickle named.
    """

    pickled_as = "?"

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):  # pickled dict subclasses restore their items this way
        pass

    def append(self, item):  # ... and list subclasses this way
        pass

    def extend(self, items):
        pass

    def __repr__(self) -> str:
        return f"<inert placeholder for {self.pickled_as}>"


def _placeholder(qualified: str) -> type:
    module, _, name = qualified.rpartition(".")
    # The weights_only unpickler matches allowed globals by "module.name": give the stand-in
    # exactly the name the pickle uses (any string, no import happens).
    cls = type(name or qualified, (InertObject,), {"pickled_as": qualified})
    cls.__module__ = module
    cls.__qualname__ = name or qualified
    return cls


# torch's weights_only unpickler refuses these modules even when allowed (it would fail later
# with a long message); say so in one line first.
_BLOCKED_MODULES = frozenset(getattr(torch._weights_only_unpickler, "_blocklisted_modules", ("sys", "os", "posix", "nt")))


# What torch.save's legacy (pre-1.6) format writes first: a pickled int.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _legacy_globals(path: Path) -> list[str]:
    """The globals ("module.name") named by a legacy-format ``torch.save`` file, read with
    ``pickletools.genops`` (which parses opcodes and runs nothing). That format is four pickles
    (magic number, protocol version, system info, the object) followed by the raw storages.

    Raises OfficialCheckpointError when the first pickle is not torch's magic number (a plain
    pickle, not a checkpoint) or a pickle ends early (a truncated file).
    """
    import pickletools

    found: list[str] = []
    with open(path, "rb") as f:
        for i in range(4):
            strings: list[str] = []
            magic = False
            try:
                for op, arg, _ in pickletools.genops(f):
                    magic = magic or (op.name.startswith("LONG") and arg == _LEGACY_MAGIC)
                    if op.name == "GLOBAL":  # protocols 0-3: the argument is "module name"
                        found.append(_python3_name(*arg.split(" ", 1)))
                    elif op.name == "STACK_GLOBAL" and len(strings) >= 2:  # protocol 4+: the last two strings
                        found.append(f"{strings[-2]}.{strings[-1]}")
                    elif isinstance(arg, str) and "UNICODE" in op.name:
                        strings.append(arg)
            except ValueError as e:  # genops: "pickle exhausted before seeing STOP", an unknown opcode
                if i == 0:
                    raise OfficialCheckpointError(f"{path}: not a PyTorch checkpoint (not a pickle torch.save "
                                                  f"wrote)") from None
                raise OfficialCheckpointError(f"{path}: truncated or corrupt checkpoint ({_one_line(e)})") from None
            if i == 0 and not magic:
                raise OfficialCheckpointError(f"{path}: not a PyTorch checkpoint (a pickle that torch.save did not "
                                              f"write)")
    return found


def _python3_name(module: str, name: str) -> str:
    """"module.name" as torch's weights_only unpickler reads a GLOBAL: Python 2 names mapped
    to Python 3's by torch's table (``__builtin__.exec`` is ``builtins.exec``), which maps fewer
    than ``pickle``'s: ``commands.call``, which protocol 2 writes for ``subprocess.call``, stays."""
    try:
        # a placeholder must bear the name torch looks up, or torch refuses the file
        from torch._utils import IMPORT_MAPPING, NAME_MAPPING
    except ImportError:
        from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING

    if (module, name) in NAME_MAPPING:
        module, name = NAME_MAPPING[(module, name)]
    elif module in IMPORT_MAPPING:
        module = IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _unsafe(names: list[str]) -> list[str]:
    """The globals in ``names`` that torch's weights_only unpickler does not allow."""
    allowed: set[str] = set()
    for getter in ("_get_allowed_globals", "_get_user_allowed_globals"):
        get = getattr(torch._weights_only_unpickler, getter, None)
        if get is not None:
            allowed |= set(get())
    return sorted({n for n in names if n not in allowed})


def _kind_of_file(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        return "zip" if zipfile.is_zipfile(path) else "broken-zip"
    if head[:1] == b"\x80":  # a pickle protocol opcode: torch's legacy (pre-1.6) format
        return "legacy"
    return "other"


def read_official_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The top-level dict of a checkpoint file, loaded without running pickled code.

    Args:
        path: a file written by ``torch.save``: the zip format (torch >= 1.6) or the legacy
            format of torch < 1.6, in which the published official checkpoints were written
            (its globals are listed by ``pickletools.genops``, which runs nothing).

    Returns: the unpickled object (a dict for any checkpoint), tensors on the CPU; every
    global torch does not allow is an ``InertObject`` placeholder.

    Raises:
        FileNotFoundError: ``path`` does not exist; IsADirectoryError: it is a folder.
        OfficialCheckpointError: not a torch checkpoint, truncated or corrupt, a TorchScript
            archive, or a pickle that calls a global of a module torch blocks (``os.system``)
            or that torch's restricted unpickler refuses otherwise; the message starts with
            ``path`` and names the global the pickle calls, where there is one.
    """
    return _read_checkpoint_file(path, crcs_compared=False)


def _read_checkpoint_file(path: str | os.PathLike, crcs_compared: bool) -> dict[str, Any]:
    """:func:`read_official_checkpoint`, which see (arguments, result, errors); ``crcs_compared``:
    the caller has just found the file's zip CRC-32s intact with :func:`checkpoint_damage` (as
    :mod:`alae_fast.inference.loading` does, in its own words), so they are not read again: that
    is a second pass over the whole file (0.04 s a 100 MB)."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"checkpoint {str(p)!r} is a folder; give the checkpoint file (.pth)")
    check_regular_file(p, f"checkpoint {str(p)!r}", "; give the checkpoint file (.pth)")
    kind = _kind_of_file(p)
    if kind == "broken-zip":
        raise OfficialCheckpointError(f"{p}: truncated or corrupt checkpoint (its zip archive is incomplete)")
    if kind == "other":
        raise OfficialCheckpointError(f"{p}: not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)")
    if kind == "zip":
        # torch's reader would load flipped bytes as other weights
        damage = None if crcs_compared else checkpoint_damage(p)
        if damage is not None:
            raise OfficialCheckpointError(f"{p}: damaged checkpoint ({damage})")
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            raise OfficialCheckpointError(f"{p}: a TorchScript archive, not a checkpoint")
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(p)
        except Exception as e:
            raise OfficialCheckpointError(f"{p}: unreadable checkpoint ({type(e).__name__}: "
                                          f"{_one_line(e)})") from None
    else:  # the legacy format of torch < 1.6 (the official code names PyTorch 1.4; models published 2020)
        unsafe = _unsafe(_legacy_globals(p))
    blocked = [g for g in unsafe if g.split(".", 1)[0] in _BLOCKED_MODULES]
    if blocked:
        raise _refused_call(p, blocked[0])
    placeholders = [_placeholder(g) for g in unsafe]
    try:
        with torch.serialization.safe_globals(placeholders), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's note on pickle protocols: one error line, no more
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise _unpickler_refusal(p, e) from None
    except Exception as e:
        raise OfficialCheckpointError(f"{p}: truncated or corrupt checkpoint ({type(e).__name__}: "
                                      f"{_one_line(e)})") from None


def _refused_call(p: Path, qualified: str) -> OfficialCheckpointError:
    return OfficialCheckpointError(f"{p}: refused: its pickle calls {qualified}, which no checkpoint needs (the "
                                   f"file may be malicious); nothing was run")


# torch's refusal names the global as "GLOBAL module.name" ("Unsupported global: GLOBAL
# commands.call was not ...", "unsupported GLOBAL os.system whose module os is blocked"), and
# builtins' as a bare name ("GLOBAL exec"); terminal escapes set off its advice.
_GLOBAL_IN_REFUSAL = re.compile(r"\bGLOBAL\s+([A-Za-z_][\w.]*)")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _unpickler_refusal(p: Path, e: BaseException) -> OfficialCheckpointError:
    """The one-line error for torch's weights_only unpickler refusing ``p``: the global the
    pickle calls when torch names one, else torch's reason; never torch's advice to load with
    weights_only=False, which would run the file's code."""
    text = _ANSI_ESCAPE.sub("", str(e))
    found = _GLOBAL_IN_REFUSAL.search(text)
    if found:
        qualified = found.group(1).rstrip(".")
        return _refused_call(p, qualified if "." in qualified else f"builtins.{qualified}")
    # torch's reason follows this on one line; the lines before it are the advice
    _, marker, rest = text.partition("WeightsUnpickler error:")
    reason = " ".join((rest.strip().split("\n", 1)[0] if marker else text).split())
    if not reason or "weights_only" in reason or reason.startswith("Weights only load failed"):
        reason = "its pickle holds more than tensors and containers"
    return OfficialCheckpointError(f"{p}: not loadable without running pickled code ({reason[:200]}); nothing "
                                   f"was run")


def _one_line(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[:limit] + "..."


# The keys of the official yacs configs: the union of defaults.py over the branches of
# podgorskiy/ALAE (master, mnist_ref, ...); sections map to their keys, None marks a plain key.
OFFICIAL_YAML_KEYS: dict[str, frozenset[str] | None] = {
    "NAME": None, "OUTPUT_DIR": None, "PPL_CELEBA_ADJUSTMENT": None,
    "DATASET": frozenset({"PATH", "PATH_TEST", "FFHQ_SOURCE", "PART_COUNT", "PART_COUNT_TEST", "SIZE", "SIZE_TEST",
                          "FLIP_IMAGES", "SAMPLES_PATH", "STYLE_MIX_PATH", "MAX_RESOLUTION_LEVEL"}),
    "MODEL": frozenset({"LAYER_COUNT", "START_CHANNEL_COUNT", "MAX_CHANNEL_COUNT", "LATENT_SPACE_SIZE",
                        "DLATENT_AVG_BETA", "TRUNCATIOM_PSI", "TRUNCATIOM_CUTOFF", "STYLE_MIXING_PROB",
                        "MAPPING_LAYERS", "CHANNELS", "GENERATOR", "ENCODER", "MAPPING_D", "MAPPING_F",
                        "MAPPING_TO_LATENT", "MAPPING_FROM_LATENT", "Z_REGRESSION"}),
    "TRAIN": frozenset({"EPOCHS_PER_LOD", "BASE_LEARNING_RATE", "ADAM_BETA_0", "ADAM_BETA_1", "LEARNING_DECAY_RATE",
                        "LEARNING_DECAY_STEPS", "TRAIN_EPOCHS", "LOD_2_BATCH_8GPU", "LOD_2_BATCH_4GPU",
                        "LOD_2_BATCH_2GPU", "LOD_2_BATCH_1GPU", "SNAPSHOT_FREQ", "REPORT_FREQ", "LEARNING_RATES",
                        "ALPHA", "BETTA", "M"}),
}


def _unknown_yaml_keys(data: dict) -> list[str]:
    """The dotted keys of ``data`` that OFFICIAL_YAML_KEYS does not define, each with the
    nearest defined one when there is a close one."""
    import difflib

    known = [k if v is None else f"{k}.{sub}" for k, v in OFFICIAL_YAML_KEYS.items() for sub in (v or [None])]
    found = []
    for key, value in data.items():
        key = str(key)
        subs = OFFICIAL_YAML_KEYS.get(key, False)
        if subs is False:
            found.append(key)
        elif subs is not None and isinstance(value, dict):
            found.extend(f"{key}.{sub}" for sub in map(str, value) if sub not in subs)
    out = []
    for key in found:
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        out.append(f"{key} (did you mean {near[0]}?)" if near else key)
    return out


def read_official_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """An official ``configs/*.yaml`` as a dict of sections (``{'MODEL': {...}, 'TRAIN': ...}``).

    Raises FileNotFoundError, IsADirectoryError (a folder), ImportError (PyYAML missing: the
    ``[official]`` extra) or OfficialCheckpointError (not YAML, not a mapping, or a key the
    official ``defaults.py`` does not define: :data:`OFFICIAL_YAML_KEYS`).
    """
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"config {str(p)!r} is a folder; give the YAML file (e.g. configs/ffhq.yaml)")
    check_regular_file(p, f"config {str(p)!r}", "; give the YAML file (e.g. configs/ffhq.yaml)")
    try:
        import yaml
    except ImportError:
        raise ImportError(f"reading an official YAML config needs PyYAML: {install_hint('official')} "
                          "(or load without --config: the architecture is inferred from the checkpoint)") from None
    try:
        data = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise OfficialCheckpointError(f"{p}: not a YAML file ({_one_line(e)})") from None
    if not isinstance(data, dict):
        raise OfficialCheckpointError(f"{p}: an official config must be a YAML mapping of sections "
                                      f"(MODEL, TRAIN, ...); got {type(data).__name__}")
    unknown = _unknown_yaml_keys(data)
    if unknown:
        raise OfficialCheckpointError(f"{p}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: the "
                                      f"official defaults.py defines no such key (its yacs loader refuses it too), "
                                      f"and a misspelt one would leave its setting at the default")
    return data
