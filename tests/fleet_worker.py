"""Run by test_fleet.py under ``paddle.distributed.launch --nproc_per_node 2``: trains with the
config given on the command line, then saves this rank's parameters and validation history; with
``days`` first, pretrains the day encoder instead and saves this rank's encoder parameters."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ppeye  # noqa: E402
from ppeye.engine import Trainer  # noqa: E402


def pretrain(config, out, overrides):
    from ppeye.core.device import init_distributed
    from ppeye.engine import day_pretrain

    made = []

    class Kept(day_pretrain.DayEncoder):            # the encoder this rank trained
        def __init__(self, model):
            super().__init__(model)
            made.append(self)

    day_pretrain.DayEncoder = Kept
    cfg = ppeye.load_config(config, overrides)
    day_pretrain.pretrain_days(cfg)
    world, rank = init_distributed(cfg)
    np.savez(os.path.join(out, f"days_rank{rank}.npz"), **{k: v.numpy() for k, v in made[0].state_dict().items()})
    with open(os.path.join(out, f"days_rank{rank}.json"), "w") as f:
        json.dump({"world": world}, f)


def main():
    if sys.argv[1] == "days":
        return pretrain(sys.argv[2], sys.argv[3], sys.argv[4:])
    config, out, *overrides = sys.argv[1:]
    trainer = Trainer(ppeye.load_config(config, overrides))
    history = trainer.train()
    params = {k: v.numpy() for k, v in trainer.model.state_dict().items()}
    np.savez(os.path.join(out, f"params_rank{trainer.rank}.npz"), **params)
    with open(os.path.join(out, f"history_rank{trainer.rank}.json"), "w") as f:
        json.dump({"world": trainer.world, "history": history}, f)


if __name__ == "__main__":
    main()
