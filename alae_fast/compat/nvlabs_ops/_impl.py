"""NVlabs' ``impl`` argument in alae_fast's terms, shared by the shims."""


def resolve_impl(impl: str, op: str) -> str:
    """'cuda' (NVlabs' default: the compiled kernel, which alae_fast also has for CPU) or
    'auto' -> 'auto'; 'ref' -> 'ref'. Raises TypeError for an ``impl`` that is not a string,
    ValueError for another string, naming ``op``."""
    if not isinstance(impl, str):
        raise TypeError(f"{op}: impl must be 'cuda' or 'ref' (NVlabs names) or 'auto'; got {impl!r} "
                        f"of type {type(impl).__name__}")
    if impl in ("cuda", "auto"):
        return "auto"
    if impl == "ref":
        return "ref"
    raise ValueError(f"{op}: impl must be 'cuda' or 'ref' (NVlabs names) or 'auto'; got {impl!r}")


def init() -> bool:
    """NVlabs' ``_init()`` of bias_act, upfirdn2d and filtered_lrelu, which training loops call
    before the first step: True when the compiled kernels will run (alae_fast's library loaded
    and ALAE_FAST_IMPL is not 'ref'), False when the ops run their references. Nothing is built
    here (the library was compiled at install); a library that failed to load was already
    warned about at import. ValueError for a bad ALAE_FAST_IMPL, as every op raises."""
    from ... import _lib

    return _lib.loaded() and _lib.default_impl() == "auto"
