"""The model: OnsetNet (``onset_net.py``), its layers (``layers/``), the ResNet3D backbone
(``backbones/resnet3d.py``) and the losses (``losses.py``). Importing registers them."""
from . import losses
from .backbones.resnet3d import ResNet3D
from .losses import build_loss, total_loss
from .onset_net import DISEASES, OnsetNet

__all__ = ["OnsetNet", "ResNet3D", "build_loss", "total_loss", "losses", "DISEASES"]
