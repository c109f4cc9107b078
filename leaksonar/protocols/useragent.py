"""How leaksonar names itself to the servers it probes."""

INFO_URL = "https://github.com/leaksonar/leaksonar#responsible-use"
USER_AGENT = f"leaksonar/0.1 (+{INFO_URL})"
