"""Errors the backend raises for a user to act on. The CLI prints them without a traceback."""

from __future__ import annotations


class SkydeckError(Exception):
    """A failure with a message that says what went wrong and what to do about it."""

    exit_code = 1


class ConfigError(SkydeckError):
    """A profile, preset or option is wrong."""

    exit_code = 2


class NotFoundError(SkydeckError):
    """A named thing (stack, job, preset, profile) does not exist."""

    exit_code = 3


class LocalCloudDown(SkydeckError):
    """The embedded local cloud is not running."""

    exit_code = 4


class Unreachable(SkydeckError):
    """AWS (or the local cloud) stopped answering partway: what was done may be incomplete."""

    exit_code = 4
