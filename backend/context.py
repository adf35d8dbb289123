"""One object per command: the home, the profile, and the domain services built on its clients.

The backend's composition root: it sits above the domains (stacks, jobs) it hands out, so that
backend.core, beneath every domain, imports none of them. The services are built on first use, so
that a command which never reaches AWS never imports boto3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from backend.core.aws import Clients
from backend.core.paths import Home
from backend.core.profiles import Profile, get_profile

if TYPE_CHECKING:
    from backend.jobs.scenes import Scenes
    from backend.jobs.service import Jobs
    from backend.stacks.service import Stacks


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
    def stacks(self) -> Stacks:
        from backend.stacks.service import Stacks

        return Stacks(self.clients)

    @cached_property
    def jobs(self) -> Jobs:
        from backend.jobs.service import Jobs

        return Jobs(self)

    @cached_property
    def scenes(self) -> Scenes:
        from backend.jobs.scenes import Scenes

        return Scenes(self)
