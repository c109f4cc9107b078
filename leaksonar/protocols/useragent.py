"""How leaksonar names itself to the servers it probes: an identifying User-Agent with an info URL.

Operators set their own page (who scans, why, how to opt out) with LEAKSONAR_INFO_URL, or the whole
string with LEAKSONAR_USER_AGENT; either is read once, when leaksonar starts.
"""

import os

from leaksonar import __version__

INFO_URL = os.environ.get("LEAKSONAR_INFO_URL") or "https://github.com/leaksonar/leaksonar#responsible-use"
USER_AGENT = os.environ.get("LEAKSONAR_USER_AGENT") or f"leaksonar/{__version__} (+{INFO_URL})"
