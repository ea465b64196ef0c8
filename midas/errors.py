"""Exceptions that the CLI turns into one clear message and a non-zero exit.

Every error a user can cause (bad config, missing data, malformed genotype) is a
``MidasError``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MidasError(Exception):
    """A problem with the user's input: what is wrong, where, how to fix it."""


class ConfigError(MidasError):
    pass


class DataError(MidasError):
    pass


class GenotypeError(MidasError):
    pass


class CheckpointError(MidasError):
    pass


class NonFiniteLossError(MidasError):
    pass


class ResourceError(MidasError):
    pass
