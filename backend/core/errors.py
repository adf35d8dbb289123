"""Errors the backend raises for a user to act on. The CLI prints them without a traceback."""

from __future__ import annotations


class SkydeckError(Exception):
    """A failure with a message that says what went wrong and what to do about it."""

    exit_code = 1


class ConfigError(SkydeckError):
    """A profile, preset or option is wrong. `field`, when known, is the dotted path of the value
    (config.lr_sigma): front ends mark that field rather than parse the message."""

    exit_code = 2

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(SkydeckError):
    """A named thing (stack, job, preset, profile) does not exist."""

    exit_code = 3


class LocalCloudDown(SkydeckError):
    """The embedded local cloud is not running."""

    exit_code = 4


class Unreachable(SkydeckError):
    """AWS (or the local cloud) stopped answering partway: what was done may be incomplete."""

    exit_code = 4
