"""Per-request work in moto that never changes while the process runs, computed once.

moto lists its own package directory (about 57 `isdir` calls) to route every request, and walks a
response class with `inspect.getmembers` on every call. Both answers are fixed for the life of
the local cloud's process, so they are cached here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from moto import backends
from moto.core import responses, utils


def install() -> None:
    if getattr(backends, "_skydeck_cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return modules

    backends.list_of_moto_modules = list_of_moto_modules
    cached = functools.lru_cache(maxsize=None)(utils.method_names_from_class)
    responses.method_names_from_class = cached
    backends._skydeck_cached = True  # type: ignore[attr-defined]  # moto's module, patched in place
