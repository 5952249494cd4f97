"""NVlabs' ``impl`` argument in alae_fast's terms, shared by the shims."""


def resolve_impl(impl: str, op: str) -> str:
    """'cuda' (NVlabs' default: the compiled kernel, which alae_fast also has for CPU) or
    'auto' -> 'auto'; 'ref' -> 'ref'. Raises ValueError otherwise, naming ``op``."""
    if impl in ("cuda", "auto"):
        return "auto"
    if impl == "ref":
        return "ref"
    raise ValueError(f"{op}: impl must be 'cuda' or 'ref' (NVlabs names) or 'auto'; got {impl!r}")
