"""Demo data slot (filled by its issue's work)."""

from __future__ import annotations


def seed_workbench_life(seeder) -> dict[str, int]:
    return {}
