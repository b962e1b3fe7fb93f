"""Explanations of OnsetNet: where (``gradcam``: 3D Grad-CAM), when (``attention``: temporal
attention, rollout, the patient's attention over days), at which period (``spectrum``: AFNO
modes) and for whom (``routing``: MoE expert usage and clusters); ``run.Explainer`` runs them
all for ``tools/visualize.py``."""
from .gradcam import GradCAM3D, cam_layers, person_maps, pointing_game, region_energy_ratio
from .run import WHAT, Explainer

__all__ = ["Explainer", "GradCAM3D", "WHAT", "cam_layers", "person_maps", "pointing_game", "region_energy_ratio"]
