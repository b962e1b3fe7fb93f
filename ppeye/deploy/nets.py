"""The layers ``tools/export.py`` traces: OnsetNet with the inference outputs.

Outputs, in this order (names in ``infer_cfg.yml``):

* ``probs`` [B, 4]: disease risks (sigmoid of the logits);
* ``embedding`` [B, E]: the fused embedding, for the retrieval blend;
* ``day_importance`` [B, T]: the patient-to-weather cross-attention over the window's
  days, averaged over heads and ensemble members (sums to 1 per person), for
  ``tools/infer.py --explain``; only when the weather branch is on.

Paddle's exporter needs ``forward(self, ...)`` in a source file and refuses inputs the
graph does not use, so there is one class per input set.
"""
from ..core.paddle_env import import_paddle

paddle = import_paddle()
F = paddle.nn.functional


def _outputs(net, logits, explain):
    probs = F.sigmoid(logits)
    if not net.weather_branch:
        return probs, explain["embedding"]
    return probs, explain["embedding"], explain["patient_to_weather"].mean(axis=[1, 2])


class _Export(paddle.nn.Layer):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def outputs(self, weather_unique, day_index, tab, tab_mask, weather_present=None):
        logits, explain = self.net(weather_unique, day_index, tab, tab_mask, return_explain=True,
                                   weather_present=weather_present)
        return _outputs(self.net, logits, explain)


class MissingAwareExport(_Export):
    """``model.missing``: also ``weather_present`` [B] (0 scores a person without weather)."""

    def forward(self, weather_unique, day_index, tab, tab_mask, weather_present):
        return self.outputs(weather_unique, day_index, tab, tab_mask, weather_present)


class WeatherPatientExport(_Export):
    """Both branches, patient features with their observed mask."""

    def forward(self, weather_unique, day_index, tab, tab_mask):
        return self.outputs(weather_unique, day_index, tab, tab_mask)


class WeatherPatientNoMaskExport(_Export):
    """Both branches; the tabular model does not read the mask (``tabular.use_mask: false``)."""

    def forward(self, weather_unique, day_index, tab):
        return self.outputs(weather_unique, day_index, tab, None)


class PatientOnlyExport(_Export):
    """``model.weather_branch: false``."""

    def forward(self, tab, tab_mask):
        return self.outputs(None, None, tab, tab_mask)


class PatientOnlyNoMaskExport(_Export):
    def forward(self, tab):
        return self.outputs(None, None, tab, None)


def export_layer(net):
    """``(layer, input names)`` for ``net``'s switched-on parts."""
    uses_mask = net.patient_branch and bool(getattr(net.tabular, "use_mask", True))
    if getattr(net, "missing", None) is not None:     # both branches; the flags read tab_mask
        return MissingAwareExport(net), ["weather_unique", "day_index", "tab", "tab_mask", "weather_present"]
    if net.weather_branch:
        if uses_mask:
            return WeatherPatientExport(net), ["weather_unique", "day_index", "tab", "tab_mask"]
        return WeatherPatientNoMaskExport(net), ["weather_unique", "day_index", "tab"]
    if uses_mask:
        return PatientOnlyExport(net), ["tab", "tab_mask"]
    return PatientOnlyNoMaskExport(net), ["tab"]


def output_names(net):
    return ["probs", "embedding"] + (["day_importance"] if net.weather_branch else [])
