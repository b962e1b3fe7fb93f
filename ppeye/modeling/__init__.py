"""The model: OnsetNet (``onset_net.py``), its layers (``layers/``), the ResNet3D backbone
(``backbones/resnet3d.py``) and the losses (``losses.py``). Importing registers them."""
from . import losses
from .backbones.resnet3d import ResNet3D
from .losses import build_loss, total_loss
from .onset_net import DISEASES, OnsetNet
from .pretrain import ContrastivePretrainer, InfoNCE

__all__ = ["OnsetNet", "ContrastivePretrainer", "InfoNCE", "ResNet3D", "build_loss", "total_loss", "losses", "DISEASES"]
