"""leaksonar: find databases exposed without a password, measure what they leak, index the findings."""

from importlib.metadata import version

__version__ = version("leaksonar")
