"""A few hundred mutated images through the loader: only InputError may come out.

The long run is a separate command: ``python tests/fuzz/fuzz_loader.py --seconds 60``.
"""

from __future__ import annotations

import random

from fuzz.fuzz_loader import check_one, mutate, seeds


def test_mutated_images_load_or_raise_input_error(tmp_path):
    rnd = random.Random(1234)
    corpus = seeds()
    assert len(corpus) >= 10
    target = tmp_path / "input.img"
    for _ in range(400):
        check_one(mutate(rnd.choice(corpus), rnd), target)
