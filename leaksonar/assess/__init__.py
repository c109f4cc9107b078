"""Assessment: what one service's inspection means. Pure functions, no I/O.

Personal data (pii), ransom and attack signs (ransom), severity and a one-line summary. Samples end
here: the Assessment keeps only categories, counts, masked examples and the attackers' notes.
"""

from __future__ import annotations

from leaksonar.assess.ransom import scan_ransom
from leaksonar.assess.severity import severity
from leaksonar.assess.summary import summary
from leaksonar.model import Assessment, Inspection

__all__ = ["assess"]


def assess(inspection: Inspection) -> Assessment:
    """Personal data, attack signs, severity and summary of one inspection. Ransom notes are attacker
    text: they are left out of personal-data detection."""
    from leaksonar.assess.pii import detect  # its validators are heavy: loaded on first use

    attack = scan_ransom(inspection)
    pii, collection_pii = detect(attack.clean(inspection.samples))
    return Assessment(
        pii=pii,
        collection_pii=collection_pii,
        infected=attack.infected,
        notes=attack.notes,
        severity=severity(inspection, pii, collection_pii, attack.infected),
        summary=summary(inspection, pii, attack),
    )
