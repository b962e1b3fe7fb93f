"""Seeding every random number generator ppeye uses."""
import os
import random

import numpy as np


def seed_everything(seed):
    """Seed Python, NumPy and (when installed) Paddle; returns the seed."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import paddle
    except ImportError:
        return seed
    paddle.seed(seed)
    return seed
