"""One object per command: the home, the profile, and the services built on its clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from backend.core.aws import Clients
from backend.core.paths import Home
from backend.core.profiles import Profile, get_profile


@dataclass
class Context:
    home: Home
    profile: Profile
    _clients: Clients | None = field(default=None, repr=False)

    @classmethod
    def create(cls, profile: str | None = None, home: Home | None = None) -> Context:
        home = home or Home.from_env()
        return cls(home=home, profile=get_profile(home, profile))

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = Clients(self.profile, self.home)
        return self._clients

    @cached_property
    def stacks(self):  # noqa: ANN201 - imported lazily to keep `skydeck --help` fast
        from backend.stacks.service import Stacks

        return Stacks(self.clients)

    @cached_property
    def jobs(self):  # noqa: ANN201
        from backend.jobs.service import Jobs

        return Jobs(self)

    @cached_property
    def scenes(self):  # noqa: ANN201
        from backend.jobs.scenes import Scenes

        return Scenes(self)
