"""The lab: real database servers on loopback, seeded with synthetic data (demo, tests, benchmarks).

Names are imported on first use, so that `leaksonar` commands other than `lab` do not pay for the
lab's client libraries and data generators.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "lab_digest": "leaksonar.lab.digest",
    "lab_down": "leaksonar.lab.lifecycle",
    "lab_status": "leaksonar.lab.lifecycle",
    "lab_up": "leaksonar.lab.lifecycle",
    "Manifest": "leaksonar.lab.manifest",
    "read_manifest": "leaksonar.lab.manifest",
    "service": "leaksonar.lab.manifest",
    "total_rows": "leaksonar.lab.manifest",
    "DEFAULT_BASE": "leaksonar.lab.spec",
    "SERVICES": "leaksonar.lab.spec",
    "LabError": "leaksonar.lab.spec",
    "check_base": "leaksonar.lab.spec",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'leaksonar.lab' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
