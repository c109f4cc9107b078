"""The lab: real database servers on loopback, seeded with synthetic data (demo, tests, benchmarks)."""

from leaksonar.lab.digest import lab_digest
from leaksonar.lab.lifecycle import lab_down, lab_status, lab_up
from leaksonar.lab.manifest import Manifest, read_manifest, service, total_rows
from leaksonar.lab.spec import DEFAULT_BASE, SERVICES, LabError, check_base

__all__ = [
    "DEFAULT_BASE",
    "SERVICES",
    "LabError",
    "Manifest",
    "check_base",
    "lab_digest",
    "lab_down",
    "lab_status",
    "lab_up",
    "read_manifest",
    "service",
    "total_rows",
]
