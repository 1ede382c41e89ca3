"""The self-contained HTML report: figures embedded as base64 PNG, opens offline."""

from __future__ import annotations

import base64
import csv
import html
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from leukoscope.evaluation import plots
from leukoscope.io_utils import atomic_write
from leukoscope.scoring.bundle import Bundle
from leukoscope.scoring.calibration import reliability_bins, softmax

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.45}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.notice{background:#fff4d6;border:1px solid #e0b84c;padding:.6em 1em;border-radius:4px}
.warn{background:#fde2e2;border:1px solid #d66;padding:.6em 1em;border-radius:4px}
.ok{background:#e3f5e1;border:1px solid #6a6;padding:.6em 1em;border-radius:4px}
.figs img{margin:.3em;border:1px solid #ddd} .gallery figure{display:inline-block;margin:.3em;font-size:.8em;width:150px}
.gallery img{width:150px;height:150px;object-fit:cover}
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _ci(ci: list[float]) -> str:
    return f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f} %"


def _plain(value: Any) -> str:
    """A config value as text a reader can scan: `key value, ...` (nested: `key: ...; ...`), not a Python repr."""
    if isinstance(value, dict):
        nested = any(isinstance(v, dict) for v in value.values())
        return ("; " if nested else ", ").join(f"{k}: {_plain(v)}" if isinstance(v, dict) else f"{k} {_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    return str(value)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _training_curves(bundle: Bundle) -> bytes | None:
    log = bundle.path.parent / "logs" / "metrics.csv"
    if not log.is_file():
        return None
    series: dict[str, list[tuple[int, float]]] = {"train_loss_epoch": [], "val_loss": [], "val_acc": [], "val_f1": []}
    with open(log, newline="") as fh:
        for row in csv.DictReader(fh):
            for key in series:
                if row.get(key):
                    series[key].append((int(float(row["epoch"])), float(row[key])))
    return plots.curves_png(series) if any(series.values()) else None


def _thumbnail(path: str, size: int = 150) -> str:
    img = cv2.imread(path)
    if img is None:
        return ""
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return f'<img alt="" src="data:image/jpeg;base64,{base64.b64encode(buf.tobytes()).decode()}">' if ok else ""


def write_report(
    out: str | Path,
    bundle: Bundle,
    metrics: dict[str, Any],
    rows: list[dict[str, Any]],
    data: str = "",
    splits: str | None = None,
    leaks: list | None = None,
    overlays: dict[str, str] | None = None,
) -> Path:
    """Render report.html. `overlays` maps image paths to explanation PNG files for the error gallery."""
    classes = bundle.classes
    meta = bundle.meta
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>leukoscope report</title><style>{STYLE}</style></head><body>"]
    parts.append("<h1>leukoscope evaluation report</h1>")
    parts.append(f"<p class='notice'><b>Intended use.</b> {html.escape(meta.get('intended_use', ''))}</p>")

    parts.append("<h2>Summary</h2>")
    summary = [["images evaluated", metrics["n"]], ["accuracy", f"{_pct(metrics['accuracy'])} (95 % CI {_ci(metrics['accuracy_ci'])})"]]
    if "macro_f1" in metrics:
        summary += [
            ["macro-F1", f"{metrics['macro_f1']:.4f} (95 % CI {metrics['macro_f1_ci'][0]:.4f}–{metrics['macro_f1_ci'][1]:.4f})"],
            ["balanced accuracy", _pct(metrics["balanced_accuracy"])],
            ["Cohen's κ", f"{metrics['cohen_kappa']:.4f}"],
            ["ECE / MCE", f"{metrics['ece']:.4f} / {metrics['mce']:.4f}"],
        ]
    bm = metrics.get("benign_vs_malignant")
    if bm:
        summary += [
            ["malignant sensitivity", f"{_pct(bm['sensitivity'])} (95 % CI {_ci(bm['sensitivity_ci'])})"],
            ["benign specificity", f"{_pct(bm['specificity'])} (95 % CI {_ci(bm['specificity_ci'])})"],
        ]
        if bm.get("specificity_at_99_sensitivity") is not None:
            summary.append(["benign specificity at 99 % sensitivity, cut chosen on these images (the most the ranking allows)", _pct(bm["specificity_at_99_sensitivity"])])
    screening = metrics.get("screening")
    if screening:
        chosen = meta.get("screening") or {}
        target, n_val = chosen.get("target_sensitivity"), chosen.get("validation_malignant")
        cut = f"p(Benign) below {screening['p_benign_below']:.3f}"
        if target and chosen.get("rule") == "conformal":
            fields = f"{n_val} malignant validation fields" if n_val else "validation"
            cut += f", a conformal cut chosen on {fields} for {_pct(target)} sensitivity on new fields"
        elif target:
            cut += f", chosen on validation for {_pct(target)} sensitivity" + (f" ({n_val} malignant fields)" if n_val else "")
        summary += [
            [f"screening call ({cut}): malignant sensitivity", f"{_pct(screening['sensitivity'])} (95 % CI {_ci(screening['sensitivity_ci'])})"],
            ["screening call: benign specificity", f"{_pct(screening['specificity'])} (95 % CI {_ci(screening['specificity_ci'])})"],
        ]
    reasons = ", ".join(f"{n} {reason}" for reason, n in metrics.get("ood_reasons", {}).items())
    ood = f"{metrics.get('ood_flagged', 0)} ({reasons})" if reasons else metrics.get("ood_flagged", 0)
    summary += [["flagged for review (abstain or OOD)", metrics.get("abstained", 0)], ["out-of-distribution", ood]]
    if metrics.get("min_leukocytes"):
        summary.append([f"too few leukocytes to call (fewer than {metrics['min_leukocytes']})", metrics.get("too_few_leukocytes", 0)])
    if metrics.get("min_fine_detail") is not None:
        summary.append([f"too little fine detail to call, out of focus (below {metrics['min_fine_detail']:.3f})", metrics.get("out_of_focus", 0)])
    if "members_disagree" in metrics:
        summary.append(["the ensemble's members disagree", metrics["members_disagree"]])
    if metrics.get("accepted_error") is not None:
        on = "benign vs malignant" if metrics.get("abstain_on") == "malignancy" else "class"
        target = f" (target {_pct(metrics['target_error'])}, chosen on validation)" if metrics.get("target_error") is not None else ""
        summary.append([f"error of the {metrics['accepted']} calls not flagged, on {on}", f"{_pct(metrics['accepted_error'])}{target}"])
    parts.append(_table(["", "value"], summary))

    parts.append("<h2>Configuration</h2>")
    spec, pre = meta.get("model", {}), meta.get("preprocess", {})
    cfg = meta.get("config", {})
    parts.append(
        _table(
            ["setting", "value"],
            [
                ["model", f"{spec.get('name')} ({_plain(spec.get('kwargs', {}))})"],
                ["parameters", f"{spec.get('parameters', 0):,}"],
                ["input size", meta.get("input_size")],
                ["preprocessing", " → ".join(n for n, _ in bundle.pipeline.named_steps()) + f"; normalise: {pre.get('normalize')}"],
                ["loss", _plain(cfg.get("loss"))],
                ["training", _plain({k: cfg.get("train", {}).get(k) for k in ("max_epochs", "optimizer", "lr", "schedule", "precision")})],
                ["calibration temperature", f"{bundle.temperature:.3f}"],
                ["each unit read", _views(bundle.tta, metrics.get("tta", bundle.tta))],
                ["call", "benign first: Benign when p(Benign) ≥ ½, else the most probable malignant class" if bundle.call_rule == "benign_first" else "the most probable class"],
                ["abstain below confidence", f"{bundle.abstain_threshold:.3f}" + (" in benign vs malignant" if bundle.abstain_on == "malignancy" else "")
                 + (" (validation error's 95 % upper bound held to the target)" if (meta.get("abstain") or {}).get("bound") == "upper" else "")],
                *([["leukocytes a field's call needs", bundle.min_leukocytes]] if bundle.min_leukocytes else []),
                *([["fine detail a field's cells need (out of focus below)", f"{bundle.focus.floor:.3f}, the training fields' {100 * bundle.focus.quantile:g} % quantile"]] if bundle.focus else []),
            ],
        )
    )

    parts.append("<h2>Data</h2>")
    trained = meta.get("data", {})
    parts.append(
        _table(
            ["", "value"],
            [
                ["training data", f"{trained.get('root', '?')} (fingerprint {trained.get('fingerprint', '?')})"],
                ["training split counts", _plain(trained.get("counts", {}))],
                ["evaluated data", data + (f" — split file {splits}" if splits else " — every image")],
            ],
        )
    )
    if leaks is not None:
        cls = "ok" if not leaks else "warn"
        parts.append(f"<p class='{cls}'>Leakage check: {len(leaks)} identical or near-identical image group(s) cross splits.</p>")

    curves = _training_curves(bundle)
    if curves:
        parts.append("<h2>Training curves</h2>" + _img(curves, "training curves"))

    if rows and "confusion_matrix" in metrics:
        y = np.array([classes.index(r["true"]) for r in rows])
        probs = np.array([[r[f"p_{c}"] for c in classes] for r in rows])
        figs = [_img(plots.confusion_png(metrics["confusion_matrix"], classes), "confusion matrix"), _img(plots.roc_png(y, probs, classes), "ROC curves")]
        reliability = {"calibrated (T=%.2f)" % bundle.temperature: reliability_bins(probs, y)}
        if all("_logits" in r for r in rows):
            reliability["before scaling (T=1)"] = reliability_bins(softmax(np.array([r["_logits"] for r in rows])), y)
        figs.append(_img(plots.reliability_png(reliability), "reliability diagram"))
        parts.append("<h2>Errors, discrimination and calibration</h2><div class='figs'>" + "".join(figs) + "</div>")

        parts.append("<h2>Per class (95 % intervals)</h2>")
        parts.append(
            _table(
                ["class", "n", "precision", "recall (CI)", "F1", "specificity (CI)", "AUROC"],
                [
                    [c, v["support"], f"{v['precision']:.3f}", f"{v['recall']:.3f} ({_ci(v['recall_ci'])})", f"{v['f1']:.3f}", f"{v['specificity']:.3f} ({_ci(v['specificity_ci'])})", f"{v.get('auroc', float('nan')):.4f}"]
                    for c, v in metrics["per_class"].items()
                ],
            )
        )

    parts.append(_shortcut_section(metrics, Path(out).parent))

    errors = sorted((r for r in rows if r["label"] != r["true"]), key=lambda r: -r["confidence"])[:12]
    parts.append("<h2>Most confident errors</h2>")
    if not errors:
        parts.append("<p>No errors.</p>")
    else:
        figs = []
        for r in errors:
            thumb = _thumbnail(r["path"])
            if overlays and r["path"] in overlays:
                thumb = _img(Path(overlays[r["path"]]).read_bytes(), "explanation")
            caption = f"true {r['true']}, predicted {r['label']} ({100 * r['confidence']:.0f} %)<br>{html.escape(Path(r['path']).name)}"
            figs.append(f"<figure>{thumb}<figcaption>{caption}</figcaption></figure>")
        parts.append("<div class='gallery'>" + "".join(figs) + "</div>")

    parts.append("<h2>Model card</h2>")
    parts.append(f"<p><b>Intended use.</b> {html.escape(meta.get('intended_use', ''))}</p>")
    parts.append(
        f"<p><b>Training data.</b> {html.escape(str(trained.get('root', '?')))}, variant {html.escape(str(trained.get('variant')))}, "
        f"counts {html.escape(_plain(trained.get('counts', {})))}.</p>"
    )
    parts.append(
        "<p><b>Evaluation protocol.</b> Splits are stratified by class and group-aware (exact and near-duplicate images never "
        "straddle splits); intervals are Wilson (proportions) and seeded bootstrap (macro-F1); probabilities are temperature-scaled "
        "on the validation split.</p>"
    )
    parts.append("<p><b>Limitations.</b></p><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in meta.get("limitations", [])) + "</ul>")
    parts.append("</body></html>")
    out = Path(out)
    with atomic_write(out) as fh:
        fh.write("\n".join(parts))
    return out


def _shortcut_section(metrics: dict[str, Any], folder: Path) -> str:
    checks = metrics.get("shortcut_checks")
    probe = metrics.get("background_probe")
    if not checks and not probe:
        return "<h2>Shortcut checks</h2><p>Not run (use <code>--shortcut-checks</code>). On the Taleqani data the background alone identifies the class.</p>"
    out = ["<h2>Shortcut checks</h2>"]
    values = {}
    if checks:
        values = {name: c["accuracy"] for name, c in checks["results"].items()}
        out.append(
            _table(
                ["condition", "accuracy", "95 % CI", "predictions changed", "what it should be"],
                [[n, _pct(c["accuracy"]), _ci(c["accuracy_ci"]), _pct(c["changed"]) if "changed" in c else "", c["expect"]] for n, c in checks["results"].items()],
            )
        )
        for w in checks.get("warnings", []):
            out.append(f"<p class='warn'>{html.escape(w)}</p>")
        if not checks.get("warnings"):
            out.append("<p class='ok'>All checks pass: the model relies on the leukocytes, not on the annotation, the background or the cells' stain.</p>")
    if probe:
        values["background-only probe"] = probe["accuracy"]
        out.append(f"<p>Background-only probe (a small model that never sees a leukocyte): accuracy {_pct(probe['accuracy'])} (95 % CI {_ci(probe['accuracy_ci'])}); chance {_pct(probe['chance'])}.</p>")
    if values:
        out.append(_img(plots.bars_png(values, chance=checks.get("chance") if checks else None, title="accuracy under shortcut checks"), "shortcut checks"))
    preview = (checks or {}).get("results", {}).get("stain swapped", {}).get("preview")
    if preview and (folder / preview).is_file():
        out.append("<p>Fields as checked: original, the background of another class, the leukocytes in another class's stain.</p>")
        out.append(_img((folder / preview).read_bytes(), "background and stain swaps"))
    return "".join(out)


def _views(calibrated: bool, evaluated: bool) -> str:
    """How the units were read here, against how the bundle's thresholds were set (eval.tta)."""
    read = "as the mean of 8 flips and rotations" if evaluated else "in one orientation"
    return read + (" (as the thresholds were set)" if calibrated == evaluated else ", the thresholds set " + ("on 8" if calibrated else "on one"))
