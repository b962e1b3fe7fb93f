"""``tools/visualize.py``'s engine: run the model over a split, collect its explanations,
analyse them, write figures, arrays and a summary, and check them against the synthetic data's
planted ground truth when ``ground_truth.json`` is beside the raw data.
"""
import json
import os

import numpy as np
import pandas as pd

from .. import build_model
from ..core.device import select_device
from ..core.errors import InputError
from ..core.io import atomic_write, save_npz, write_csv
from ..core.logger import get_logger
from ..core.paddle_env import import_paddle
from ..core.progress import Heartbeat
from ..data.attributes import cohort_rows, person_attributes
from ..data.dataset import OnsetDataset
from ..data.ukb.fields import disease_title
from ..engine.checkpoint import load_weights
from ..engine.predict import make_loader, to_tensors
from ..metrics import DISEASES
from ..modeling.layers.moe import MoE
from . import attention as att
from . import figures, lag_response, routing, spectrum
from .gradcam import GradCAM3D, person_maps, pointing_game, region_energy_ratio, window_sum
from .truth import load_gt, load_truth

paddle = import_paddle()
WHAT = ("gradcam", "attention", "afno", "moe", "lag_response")


class Explainer:
    def __init__(self, cfg, weights=None, model=None, log=None):
        self.cfg, self.log = cfg, log or get_logger("ppeye.explain")
        select_device(cfg.get("device", "auto"))
        if model is None:
            weights = weights or cfg.get("weights")
            if not weights:
                raise InputError("no weights to explain: pass -o weights=<run directory or checkpoint>")
            model = build_model(cfg)
            self.checkpoint = load_weights(model, weights)
        self.model = model
        self.model.eval()

    # ------------------------------------------------------------------ collection
    def cam_settings(self, layer=None, method=None, day_weighting=None):
        """Grad-CAM's layer, method and day weighting: the arguments, else the config's
        ``explain`` section, else the defaults (last residual block, gradcam, attention)."""
        section = self.cfg.get("explain") or {}
        return {"layer": layer or section.get("cam_layer"),
                "method": method or section.get("cam_method") or "gradcam",
                "day_weighting": day_weighting or section.get("day_weighting") or "attention"}

    def collect(self, dataset, what, cam=None, max_people=None):
        """Run the model over ``dataset`` and gather the explanations ``what`` asks for; ``cam``:
        the ``GradCAM3D`` to use (None: no maps)."""
        loader = make_loader(dataset, self.cfg, shuffle=False)
        got = {k: [] for k in ("index", "probs", "importance", "rollout", "spatial", "hours", "by_variable", "routing")}
        spectra, spans, seen = [], None, 0
        beat = Heartbeat(self.log, f"explaining: {', '.join(what)}; batches", total=len(loader))
        for idx, batch in zip(loader.ppeye_sampler, loader):
            beat.step()
            b = to_tensors(batch)
            if cam is not None:
                r = cam(b["weather_unique"], b["day_index"], b["tab"], b["tab_mask"],
                        weather_present=b["weather_present"])
                ex, logits = r["explain"], r["logits"]
                day_index = batch["day_index"].numpy() if hasattr(batch["day_index"], "numpy") else np.asarray(batch["day_index"])
                s, h = person_maps(r["cam"], day_index, r["day_weights"])
                got["spatial"].append(s.astype(np.float32))
                got["hours"].append(h.astype(np.float32))
                if "by_variable" in r:                                   # [B, J, C, H, W]
                    got["by_variable"].append(window_sum(r["by_variable"], day_index, r["day_weights"]).astype(np.float32))
            else:
                with paddle.no_grad():
                    logits, ex = self.model(b, return_explain=True)
                logits = logits.numpy()
            got["index"].append(np.asarray(idx))
            got["probs"].append(1 / (1 + np.exp(-logits)))
            imp = att.day_importance(ex)
            if imp is not None:
                got["importance"].append(imp)
            heads = [a.numpy().sum(0) for a in ex.get("temporal_attention", [])]   # [h, T, T] per layer
            if heads:
                got.setdefault("_head_sum", [np.zeros_like(h) for h in heads])
                got["_head_sum"] = [acc + h for acc, h in zip(got["_head_sum"], heads)]
            maps = att.layer_maps(ex)
            if maps:
                got["rollout"].append(att.rollout(maps).mean(1))       # mean over output days: [B, T]
            if "afno" in what:
                spectra.append(spectrum.block_spectra(ex))
            if "moe" in what and ex.get("routing"):
                v, spans = routing.routing_vectors(ex, len(idx))
                got["routing"].append(v)
                for place, r in ex["routing"].items():       # top-k assignments per token
                    ind = r["indices"].numpy().ravel()
                    n = r["probs"].shape[-1]
                    counts = np.bincount(ind[ind >= 0], minlength=n)
                    acc = got.setdefault("_assign", {})
                    acc[place] = acc.get(place, 0) + counts
            seen += len(idx)
            if max_people and seen >= max_people:
                break
        head_sum = got.pop("_head_sum", None)
        assign = got.pop("_assign", None)
        out = {k: np.concatenate(v) for k, v in got.items() if v}
        if head_sum is not None:
            out["head_maps"] = np.stack([h / max(seen, 1) for h in head_sum])        # [L, h, T, T]
        if spectra:
            out["spectra"] = [(np.concatenate([s[i][0] for s in spectra]), np.concatenate([s[i][1] for s in spectra]))
                              for i in range(len(spectra[0]))]
        if cam is not None:
            out["cam_map_shape"] = cam.map_shape
        out["variables"] = list(dataset.store.variables)
        out["routing_spans"] = spans
        out["assignments"] = assign or {}
        return out

    # ------------------------------------------------------------------ the run
    def run(self, what=WHAT, out_dir="vis", split="test", layer=None, max_people=None, clusters=4, vdl=None,
            method=None, day_weighting=None):
        what = [what] if isinstance(what, str) else list(what)
        unknown = [w for w in what if w not in WHAT]
        if unknown:
            raise InputError(f"--what {','.join(unknown)}: unknown; choose from {','.join(WHAT)}")
        if "moe" in what and not self._has_moe():
            raise InputError("MoE analysis was asked for but this model has no MoE layer "
                             "(model.moe.enabled is false or no place enables moe); drop 'moe' from --what")
        if "afno" in what and getattr(self.model, "afno", None) is None:
            raise InputError("AFNO analysis was asked for but this model has no AFNO blocks "
                             "(model.temporal.afno.enabled: false); drop 'afno' from --what")
        cam_settings = self.cam_settings(layer, method, day_weighting)
        cam = None
        if "gradcam" in what:
            cam = GradCAM3D(self.model, **cam_settings)     # a bad layer name fails here, before any work
            cam_settings["layer"] = cam.layer_name
        ds = OnsetDataset(self.cfg, split)
        if "lag_response" in what:
            lag_response.check(self.cfg, ds)           # its settings, before anything is written
        os.makedirs(out_dir, exist_ok=True)
        self.log.info(f"explaining {split} ({len(ds)} people): {', '.join(what)}")
        summary = {"split": split, "what": what}
        if "lag_response" in what:                  # its own passes: every lag of every window changed in turn
            summary["lag_response"] = lag_response.analyse(
                self.cfg, [self.model], ds, OnsetDataset(self.cfg, "train"), out_dir,
                gt=load_gt(self.cfg), max_people=max_people, log=self.log)
            if what == ["lag_response"]:
                return self._finish(summary, out_dir, vdl)
        got = self.collect(ds, what, cam, max_people)
        order = got["index"]
        labels = ds.labels[order]
        attrs = self.attributes(ds, order)
        truth = load_truth(self.cfg, ds, order)
        summary.update({"people": int(len(order)), "ground_truth": truth is not None})
        if truth is not None and truth["visibility"] is not None:
            summary["planted_signal_visibility"] = {
                "meaning": "correlation of the truth's z with an ideal hand-made detector on the store (no model)",
                "people": truth["visibility_people"], **{k: round(v, 3) for k, v in truth["visibility"].items()}}
        T = ds.T
        if "gradcam" in what:
            summary["gradcam"] = self._gradcam(got, labels, truth, out_dir, cam_settings)
        if "attention" in what and "importance" in got:
            summary["attention"] = self._attention(got, labels, truth, T, attrs, out_dir)
        if "afno" in what and "spectra" in got:
            summary["afno"] = self._afno(got, labels, attrs, truth, T, out_dir)
        if "moe" in what and "routing" in got:
            summary["moe"] = self._moe(got, attrs, truth, clusters, out_dir)
        return self._finish(summary, out_dir, vdl)

    def _finish(self, summary, out_dir, vdl):
        with atomic_write(os.path.join(out_dir, "summary.json")) as f:
            json.dump(summary, f, indent=1, default=float)
        with atomic_write(os.path.join(out_dir, "summary.txt")) as f:
            f.write(self._text(summary))
        if vdl is not None:
            for name in sorted(os.listdir(out_dir)):
                if name.endswith(".png"):
                    from PIL import Image

                    vdl.writer.add_image(f"explain/{name[:-4]}", np.asarray(Image.open(os.path.join(out_dir, name)))[..., :3], 0)
        self.log.info(f"wrote {out_dir}/summary.txt\n" + self._text(summary))
        return summary

    def _has_moe(self):
        return any(isinstance(l, MoE) for l in self.model.sublayers())

    # ------------------------------------------------------------------ attributes and truth
    def attributes(self, ds, order):
        out = person_attributes(self.cfg, ds.cohort_pos[order])
        rows = cohort_rows(self.cfg, ds.cohort_pos[order], ["eid", "index_date"])
        out["_eid"] = rows["eid"].to_numpy()            # for joins only; never written or logged
        out["_index_date"] = pd.to_datetime(rows["index_date"]).dt.strftime("%Y-%m-%d").to_numpy()
        return out

    # ------------------------------------------------------------------ analyses
    def _gradcam(self, got, labels, truth, out_dir, settings):
        spatial, hours = got["spatial"], got["hours"]          # [N, 4, H, W], [N, 4, D]
        res = {**settings, "map_shape": list(got.get("cam_map_shape") or [])}   # the layer's (d, h, w)
        group_maps, titles = [], []
        for j, d in enumerate(DISEASES):
            cases = labels[:, j] == 1
            m = spatial[cases, j].mean(0) if cases.any() else spatial[:, j].mean(0)
            group_maps.append(m)
            titles.append(f"{disease_title(d)} ({int(cases.sum())} cases)")
        region = site = None
        if truth is not None:
            cells = truth["gt"]["event"]["region_cells"]
            region = (cells["rows"], cells["cols"])
            h, w = spatial.shape[-2:]
            site = ((h - 1) // 2, (w - 1) // 2)
            res["planted_region"] = {"rows": cells["rows"], "cols": cells["cols"],
                                     "area_share": truth["gt"]["event"]["region_area_share"]}
            for j, d in enumerate(DISEASES):
                cases = labels[:, j] == 1
                if not cases.any():
                    continue
                res[f"{d}_energy_ratio_group"] = float(region_energy_ratio(group_maps[j], *region))
                res[f"{d}_energy_ratio_median_person"] = float(np.nanmedian(region_energy_ratio(spatial[cases, j], *region)))
                res[f"{d}_pointing_game"] = pointing_game(spatial[cases, j], *region)
        name = f"{'HiResCAM' if settings['method'] == 'hirescam' else 'Grad-CAM'} at {settings['layer']}"
        extent = self._extent()
        figures.spatial_maps(group_maps, titles, os.path.join(out_dir, "gradcam_spatial.png"), region, site,
                             f"{name}, days by {settings['day_weighting']}, mean over cases "
                             f"(cyan: planted region; +: the centre's cell)", extent=extent,
                             cbar_label=f"{name.split(' at ')[0]} weight (relative; higher: more of the risk)")
        hrs = hours.shape[-1]
        step = 24 // hrs
        figures.line_profiles(np.arange(hrs), {disease_title(d): hours[labels[:, j] == 1, j].mean(0)
                                               if (labels[:, j] == 1).any() else hours[:, j].mean(0)
                                               for j, d in enumerate(DISEASES)},
                              os.path.join(out_dir, "gradcam_hours.png"), f"{name} by time of day (cases)",
                              "hour of the day (UTC)" + (f"\ninstantaneous variables at that hour, accumulated ones "
                                                         f"averaged over the {step} h from it" if step > 1 else ""),
                              f"{name.split(' at ')[0]} weight (relative)",
                              xticklabels=[f"{k * step:02d}:00" for k in range(hrs)])
        arrays = {"group_maps": np.stack(group_maps), "spatial": spatial, "hours": hours}
        if "by_variable" in got:
            arrays["by_variable"] = got["by_variable"]
            res.update(self._by_variable(got["by_variable"], got["variables"], labels, truth, region, site, name, out_dir))
        save_npz(os.path.join(out_dir, "gradcam.npz"), True, **arrays)
        return res

    def _extent(self):
        """Degrees east/north of the centre's cell over the config's box (maps average people of
        several centres, so the axes are offsets, not one place's lat/lon)."""
        return figures.box_extent(tuple(self.cfg["data"]["box"]), self.cfg["data"]["resolution"])

    def _by_variable(self, maps, variables, labels, truth, region, site, name, out_dir):
        """The input's signed maps per variable [N, 4, C, H, W] (summed over each person's
        window): each variable's share of the positive mass of a disease's cases' mean map, and
        for the planted event's variable the energy ratio of that mean's positive part and the
        pointing game of the people's maps."""
        res, panels, titles = {"variables": list(variables)}, [], []
        event = truth["gt"]["event"]["variable"] if truth is not None else None
        for j, d in enumerate(DISEASES):
            cases = labels[:, j] == 1
            group = maps[cases, j].mean(0) if cases.any() else maps[:, j].mean(0)        # [C, H, W]
            mass = np.clip(group, 0, None).sum((1, 2))
            res[f"{d}_variable_share"] = [round(float(v), 4) for v in mass / max(mass.sum(), 1e-30)]
            panels += list(group)
            titles += [f"{d}: {v}" for v in variables]
            if event in variables and cases.any():
                e = list(variables).index(event)
                res[f"{d}_event_variable_energy_ratio_group"] = float(region_energy_ratio(np.clip(group[e], 0, None), *region))
                res[f"{d}_event_variable_pointing_game"] = pointing_game(maps[cases, j, e], *region)
        if event is not None:
            res["event_variable"] = event
        figures.spatial_maps(panels, titles, os.path.join(out_dir, "gradcam_variables.png"), region, site,
                             f"{name}: each variable's contribution (red raises the risk), mean over cases",
                             ncols=len(variables), signed=True, extent=self._extent(),
                             cbar_label="first-order contribution to the logit (gradient x input)")
        return res

    def _attention(self, got, labels, truth, T, attrs, out_dir):
        imp, roll = got["importance"], got.get("rollout")
        res = {"importance": "patient-to-weather cross-attention, heads and members averaged, sums to 1 per person"}
        series = {"all people": imp.mean(0)}
        for j, d in enumerate(DISEASES):
            if (labels[:, j] == 1).any():
                series[f"{d} cases"] = imp[labels[:, j] == 1].mean(0)
        marks, window = {}, None
        if truth is not None:
            lags = truth["gt"]["event"]["lags"]
            window = att.window_positions(T, lags)
            marks = {window[0]: f"lag {lags[1]}", window[-1]: f"lag {lags[0]}"}
            res["planted_window_lags"] = lags
            for name, v in series.items():
                res[f"window_ratio_{name.replace(' ', '_')}"] = float(att.window_ratio(v[None], window)[0])
            if roll is not None:
                res["window_ratio_rollout_all"] = float(att.window_ratio(roll.mean(0)[None], window)[0])
        figures.line_profiles(np.arange(T), series, os.path.join(out_dir, "attention_days.png"),
                              "attention of the patient over the window's days", "window position (0 = oldest day)",
                              "attention share", marks)
        # the people of highest risk of the disease the planted event acts on most (with a ground
        # truth), else of the first disease
        focus = max(truth["gt"]["event"]["effects"], key=lambda d: max(truth["gt"]["event"]["effects"][d].values())) \
            if truth is not None else DISEASES[0]
        top = np.argsort(-got["probs"][:, DISEASES.index(focus)])[:20]
        figures.day_heatmap(imp[top], os.path.join(out_dir, "attention_people.png"),
                            f"patient-to-weather attention, 20 highest {focus} risks", attrs["_index_date"][top],
                            window)
        arrays = {"importance": imp}
        if "head_maps" in got:
            arrays["head_maps"] = got["head_maps"]          # per layer and head, mean over people
        if roll is not None:
            arrays["rollout"] = roll
        save_npz(os.path.join(out_dir, "attention.npz"), True, **arrays)
        return res

    def _afno(self, got, labels, attrs, truth, T, out_dir):
        res, series = {}, {}
        # the disease the planted oscillation acts on (with a ground truth), else the first
        periodic = next(iter(truth["gt"]["periodic"]["effects"])) if truth is not None else DISEASES[0]
        g = DISEASES.index(periodic)
        cases = labels[:, g] == 1
        winter_cases = cases & (attrs["season"] == "winter")
        rows = []
        for i, (e_in, e_out) in enumerate(got["spectra"]):
            s = spectrum.summarise(e_in, e_out, T, winter_cases if winter_cases.any() else cases)
            series[f"block {i} gain"] = s["gain"][1:]
            res[f"block{i}_top_periods_kept_energy_{periodic}_cases"] = \
                [round(float(p), 1) for p in spectrum.ranked_periods(e_out[cases].mean(0) if cases.any() else s["energy_out"], T, 5)]
            if "case_control_ratio" in s:
                res[f"block{i}_top_periods_case_control_{periodic}_winter"] = \
                    [round(float(p), 1) for p in spectrum.ranked_periods(s["case_control_ratio"], T, 5)]
            if truth is not None:
                period = truth["gt"]["periodic"]["period_days"]
                res["planted_period_days"] = period
                if "case_control_ratio" in s:
                    res[f"block{i}_rank_of_planted_period_case_control"] = spectrum.rank_of_period(
                        s["case_control_ratio"], T, period)
                res[f"block{i}_rank_of_planted_period_gain"] = spectrum.rank_of_period(s["gain"], T, period)
            for m in range(len(s["mode"])):
                rows.append({"block": i, **{k: float(v[m]) for k, v in s.items()}})
        res["modes"] = int(len(got["spectra"][0][0][0]))
        p = spectrum.periods(T)[1:]
        marks = {}
        if truth is not None:
            m = int(round(T / truth["gt"]["periodic"]["period_days"]))
            marks = {m - 1: f"planted {truth['gt']['periodic']['period_days']} d"}
        figures.line_profiles(np.arange(len(p)), series, os.path.join(out_dir, "afno_gain.png"),
                              "AFNO: kept / incoming energy per mode", "period (days)", "gain", marks,
                              [f"{v:.1f}" for v in p])
        write_csv(os.path.join(out_dir, "afno_modes.csv"), rows, list(rows[0]))
        return res

    def _moe(self, got, attrs, truth, k, out_dir):
        v, spans = got["routing"], got["routing_spans"]
        labels, emb = routing.cluster(v, k, seed=int(self.cfg.get("seed", 0)))
        res = {"layers": list(spans), "clusters": int(len(np.unique(labels))),
               "expert_usage": {p: [round(float(x), 4) for x in u] for p, u in routing.expert_usage(v, spans).items()},
               "assignment_share": {p: [round(float(x), 4) for x in c / max(c.sum(), 1)]
                                    for p, c in sorted(got.get("assignments", {}).items())}}
        tabs = {a: routing.crosstab(labels, attrs[a]) for a in ("age_band", "sex", "season", "centre") if a in attrs}
        res["crosstabs"] = tabs
        groups = None
        if truth is not None:
            ok = ~pd.isna(truth["older"])
            res["ari_people"] = int(ok.sum())
            groups = np.where(truth["older"] == True, "older", "younger").astype(object)  # noqa: E712
            groups = groups + "/" + np.where(truth["winter"] == True, "winter", "summer")  # noqa: E712
            res["ari_vs_planted_subgroups"] = routing.adjusted_rand(labels[ok], groups[ok])
            res["ari_vs_season"] = routing.adjusted_rand(labels, attrs["season"])
            if "age_band" in attrs:
                res["ari_vs_age_band"] = routing.adjusted_rand(labels, attrs["age_band"])
        figures.cluster_scatter(emb, labels, os.path.join(out_dir, "moe_clusters.png"),
                                "people by their MoE routing (PCA)", groups)
        rows = [{"attribute": a, "cluster": c, "value": val, "count": n}
                for a, t in tabs.items() for c, d in t.items() for val, n in d.items()]
        write_csv(os.path.join(out_dir, "moe_crosstabs.csv"), rows, ["attribute", "cluster", "value", "count"])
        save_npz(os.path.join(out_dir, "moe.npz"), True, routing=v, clusters=labels, embedding=emb)
        return res

    @staticmethod
    def _text(summary):
        people = summary.get("people", (summary.get("lag_response") or {}).get("people"))
        lines = [f"explanations of {people} people ({summary['split']} split)"]
        for section in ("planted_signal_visibility", "gradcam", "attention", "afno", "moe", "lag_response"):
            if section in summary:
                lines.append(f"[{section}]")
                for k, v in summary[section].items():
                    if k in ("crosstabs",):
                        continue
                    lines.append(f"  {k}: {round(v, 3) if isinstance(v, float) else v}")
        return "\n".join(lines) + "\n"
