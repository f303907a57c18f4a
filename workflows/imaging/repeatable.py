"""Repeatable ANTs. antsRegistration samples its metric points at random and, unless given a
seed, seeds that from the clock, so two runs on the same images differ. antspyx passes
``ants.config._random_seed`` to it as ``--random-seed``; with one ITK thread (petbind's default,
set in the environment before ANTs loads) the results are then identical run to run."""

from __future__ import annotations

ANTS_RANDOM_SEED = 19650218


def seeded_ants():
    """The ``ants`` module with its registration seed fixed."""
    import ants

    ants.config._random_seed = ANTS_RANDOM_SEED
    return ants
