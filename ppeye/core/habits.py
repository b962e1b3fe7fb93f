"""Keys and flags PaddleDetection users type, and ppeye's names for them: an unknown key that is
one of these is answered with the ppeye key, not with an invitation to add it."""

PADDLEDETECTION_KEYS = {
    "use_gpu": "device (auto | cpu | gpu | gpu:N; auto takes a GPU when Paddle sees one)",
    "epoch": "train.epochs",
    "LearningRate.base_lr": "optimizer.learning_rate",
    "save_dir": "output_dir",
    "snapshot_epoch": "train.checkpoint_every",
    "pretrain_weights": "pretrained",
    "worker_num": "loader.num_workers",
    "TrainReader.batch_size": "loader.batch_size",
    "use_amp": "train.amp.enabled",
    "amp": "train.amp.enabled",
}


def habit_hint(path):
    """`` ppeye's name for PaddleDetection's 'X' is Y.`` for a key PaddleDetection has, else ''."""
    target = PADDLEDETECTION_KEYS.get(path)
    return f" ppeye's name for PaddleDetection's '{path}' is {target}." if target else ""
