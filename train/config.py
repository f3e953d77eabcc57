"""The training configuration, as training code imports it. It lives in
:mod:`edge_app.train_config` because task specs validate their ``train:`` section on the
device, where the training package is not installed."""
from edge_app.train_config import INPUTS, MODES, TrainConfig, build_config, check_options

__all__ = ["INPUTS", "MODES", "TrainConfig", "build_config", "check_options"]
