"""Assessment: what one service's inspection means. Pure functions, no I/O.

Personal data (pii), ransom and attack signs (ransom), severity and a one-line summary; for file and
object stores also what files are named for (filenames) and the rows of small files' heads (heads).
Samples end here: the Assessment keeps only categories, counts, masked examples and the attackers' notes.
"""

from __future__ import annotations

from leaksonar.assess.filenames import named_files
from leaksonar.assess.heads import file_samples
from leaksonar.assess.ransom import scan_ransom
from leaksonar.assess.severity import severity
from leaksonar.assess.summary import nouns, summary
from leaksonar.model import Assessment, Inspection

__all__ = ["assess"]


def assess(inspection: Inspection) -> Assessment:
    """Personal data, attack signs, severity and summary of one inspection. Ransom notes are attacker
    text: they are left out of personal-data detection. A file store's heads are read into rows first."""
    from leaksonar.assess.pii import detect  # its validators are heavy: loaded on first use

    attack = scan_ransom(inspection)
    samples = attack.clean(inspection.samples)
    pii, collection_pii = detect(file_samples(samples) if nouns(inspection.protocol).files else samples)
    files = named_files(inspection)
    return Assessment(
        pii=pii,
        collection_pii=collection_pii,
        infected=attack.infected,
        notes=attack.notes,
        severity=severity(inspection, pii, collection_pii, attack.infected, files),
        summary=summary(inspection, pii, attack, files),
    )
