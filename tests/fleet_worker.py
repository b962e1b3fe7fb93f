"""Run by test_fleet.py under ``paddle.distributed.launch --nproc_per_node 2``: trains with the
config given on the command line, then saves this rank's parameters and validation history."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ppeye  # noqa: E402
from ppeye.engine import Trainer  # noqa: E402


def main():
    config, out, *overrides = sys.argv[1:]
    trainer = Trainer(ppeye.load_config(config, overrides))
    history = trainer.train()
    params = {k: v.numpy() for k, v in trainer.model.state_dict().items()}
    np.savez(os.path.join(out, f"params_rank{trainer.rank}.npz"), **params)
    with open(os.path.join(out, f"history_rank{trainer.rank}.json"), "w") as f:
        json.dump({"world": trainer.world, "history": history}, f)


if __name__ == "__main__":
    main()
