"""botocore's data loader, answering "is this a service?" for the one service asked.

Before it loads a model, botocore checks the service's name against a list of every service that has
that kind of model: it lists each of some 420 service folders and looks in each API version's, about
900 directory reads, twice a process (service-2, endpoint-rule-set-1). That is 27 ms of a 300 ms
`skydeck jobs list`. The list is only ever asked whether it holds one name, so here it answers that by
looking in that service's folder alone; iterated (for an error message or a listing of services), it is
botocore's own list, built the same way as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, overload

from botocore.loaders import Loader, create_loader


class ServiceNames(Sequence[str]):
    """The services that have a model of one type: membership checked per name, the whole list built on
    first iteration."""

    def __init__(self, loader: QuickLoader, type_name: str) -> None:
        self._loader = loader
        self._type_name = type_name
        self._all: list[str] | None = None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name or os.sep in name or name in (".", ".."):
            return False
        for root in self._loader.search_paths:
            folder = os.path.join(root, name)
            if not os.path.isdir(folder):
                continue
            for version in os.listdir(folder):
                if self._loader.file_loader.exists(os.path.join(folder, version, self._type_name)):
                    return True
        return False

    def _names(self) -> list[str]:
        if self._all is None:
            self._all = Loader.list_available_services(self._loader, self._type_name)
        return self._all

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


class QuickLoader(Loader):
    def list_available_services(self, type_name: str) -> ServiceNames:
        return ServiceNames(self, type_name)


def quick_loader(data_path: Any) -> QuickLoader:
    """A loader over the same folders as botocore's own for this data path (AWS_DATA_PATH)."""
    folders = create_loader(data_path).search_paths
    return QuickLoader(extra_search_paths=list(folders), include_default_search_paths=False)
