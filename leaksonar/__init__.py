"""leaksonar: find databases exposed without a password, measure what they leak, index the findings."""


def __getattr__(name: str) -> str:
    """`__version__`, looked up on first use (importlib.metadata costs every command ~25 ms at start-up)."""
    if name != "__version__":
        raise AttributeError(f"module 'leaksonar' has no attribute {name!r}")
    from importlib.metadata import version

    globals()["__version__"] = found = version("leaksonar")
    return found
