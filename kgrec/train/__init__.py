"""Training: losses, negative sampling, pre-training, fine-tuning, target-only control."""
from kgrec.train.config import (EvalConfig, FinetuneConfig, LossConfig, StageConfig, TrainConfig, load_config,
                                parse_config)
from kgrec.train.trainer import TrainResult, resolve_device, train, validate

__all__ = ["EvalConfig", "FinetuneConfig", "LossConfig", "StageConfig", "TrainConfig", "TrainResult",
           "load_config", "parse_config", "resolve_device", "train", "validate"]
