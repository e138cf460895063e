"""Training: the anime face detector and the age/gender classifier (issue 5).

Heavy modules (torch, timm, ultralytics) are imported by the trainers, not here.
"""

from factory.train.cli import add_train_arguments, run_train_from_args

__all__ = ["add_train_arguments", "run_train_from_args"]
