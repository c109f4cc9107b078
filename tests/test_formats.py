"""Counts and byte sizes: one convention (SI, 1000-based) for every output."""

from __future__ import annotations

import pytest

from leaksonar.formats import human_bytes, human_count, human_rows


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "-"),
        (0, "0"),
        (1, "1"),
        (7040, "7,040"),
        (999_999, "999,999"),
        (1_000_000, "1M"),
        (12_345_678, "12M"),
        (970_000_000, "970M"),
        (999_600_000, "1B"),
        (1_200_000_000, "1.2B"),
        (3_000_000_000_000, "3T"),
    ],
)
def test_human_count(n: int | None, text: str) -> None:
    assert human_count(n) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "-"),
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1 kB"),
        (51_200, "51 kB"),
        (1_240_000, "1.2 MB"),
        (16_400_000, "16 MB"),
        (7_000_000_000, "7 GB"),
        (23 * 10**12, "23 TB"),
    ],
)
def test_human_bytes(n: int | None, text: str) -> None:
    assert human_bytes(n) == text


def test_estimated_rows_are_written_after_a_tilde() -> None:
    assert (human_rows(970_000_000, True), human_rows(7040, False), human_rows(None, True)) == (
        "~970M",
        "7,040",
        "-",
    )
