"""The evaluation's report: the markdown tables of metrics.md and the figures (`tf_faceedit.eval.evaluation` measures,
this module writes what it measured).

    markdown_report(report)                                    # the metrics dict -> metrics.md
    write_edit_figures(figures, areas, figure_dir)             # editing methods: edits_<attr>.png, the histogram
    write_completion_figures(figure, control_figure, figure_dir)  # completion: completions.png, control_<attr>.png

`EDIT_METRICS` and `CONTROL_METRICS` are the per-attribute measures of an edit and of a completion's attribute
control, in the order of their table's columns; the evaluation fills its entries with these keys.
"""

import cv2
import numpy as np

from tf_faceedit.images import to_float
from tf_faceedit.training.callbacks import make_grid

# Per attribute of an editing method: edit success (both directions and each), preservation outside the attention
# mask, the mean attention area, the L1 distance of the edit to its input and its colour shift (`metrics.colour_shift`,
# 0..1 units: a tint the edit spreads over the face) (metrics.json keys and table columns).
EDIT_METRICS = (
    "success",
    "success 0->1",
    "success 1->0",
    "preservation_psnr",
    "preservation_l1",
    "attention_area",
    "l1_to_input",
    "colour_shift",
)
# Per attribute of a completion method's attribute control: success of the flipped fill, and how often the judge
# agrees with the labels on the own-attribute fill.
CONTROL_METRICS = ("success", "success 0->1", "success 1->0", "agreement_own")


def fmt(value, digits=3):
    """A table cell: "-" for None, a float with `digits` decimals, anything else as str."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def options_lines(report):
    """["Inference options: a=1, b=true", ""] for a report with `inference_options` (as the model ran), else []."""
    options = report.get("inference_options")
    if not options:
        return []
    return ["Inference options: " + ", ".join(f"{k}={v}" for k, v in options.items()), ""]


def no_edit_lines(report):
    """["", "No edit: ..."] when the report's attributes carry `no_edit` (the judge on the unedited inputs), else []."""
    rates = {name: e["no_edit"] for name, e in report.get("attributes", {}).items() if e.get("no_edit")}
    if not rates:
        return []
    parts = [f"{name} {fmt(r.get('0->1'))} / {fmt(r.get('1->0'))}" for name, r in rates.items()]
    return [
        "",
        "No edit (the judge's reading of the unedited inputs, taken as the edit's target; the success an edit that "
        "changes nothing scores), 0->1 / 1->0: " + ", ".join(parts),
    ]


def markdown_report(report):
    """The report's tables as markdown."""
    if report.get("method") == "classifier":
        lines = [
            f"# Evaluation of the classifier {report['model_dir']} (split {report['split']}, "
            f"{report['num_images']} images, step {report['step']})",
            "",
            "| attribute | accuracy | balanced accuracy | majority baseline | positive rate |",
            "|---|---|---|---|---|",
        ]
        for name in report["accuracy"]:
            lines.append(
                "| "
                + " | ".join(
                    [name]
                    + [
                        fmt(report[key].get(name))
                        for key in ("accuracy", "balanced_accuracy", "majority_baseline", "positive_rate")
                    ]
                )
                + " |"
            )
        return "\n".join(lines) + "\n"
    lines = [
        f"# Evaluation of {report['model_dir']} ({report['method']}, split {report['split']}, "
        f"{report['num_images']} images)",
        "",
    ]
    lines += options_lines(report)
    if "attributes" in report:
        lines += [
            "| attribute | success | 0->1 | 1->0 | preservation PSNR (dB) | preservation L1 | attention area | "
            "L1 to input | colour shift | note |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, entry in report["attributes"].items():
            lines.append(
                "| "
                + " | ".join([name] + [fmt(entry.get(k)) for k in EDIT_METRICS] + [entry.get("success_note", "")])
                + " |"
            )
        for name, entry in report["attributes"].items():
            if entry.get("unchanged"):
                lines += [
                    "",
                    f"Edits of {name}: the judge's reading of the other attributes unchanged on "
                    + ", ".join(f"{other} {fmt(rate)}" for other, rate in entry["unchanged"].items()),
                ]
        lines += no_edit_lines(report)
        for key, rates in (report.get("unchanged_reference") or {}).items():
            lines += [
                "",
                f"Reference, no edit ({key.replace('jpeg', 'the input re-encoded as JPEG at quality ')}): the judge's "
                "reading unchanged on " + ", ".join(f"{other} {fmt(rate)}" for other, rate in rates.items()),
            ]
        rec = report["reconstruction"]
        lines += [
            "",
            "Reconstruction (edit to own attributes"
            + (", the network's: residual edit off" if rec.get("network_only") else "")
            + f"): PSNR {fmt(rec['psnr'], 2)} dB, SSIM {fmt(rec['ssim'])}",
        ]
        if report.get("identity"):
            ident = report["identity"]
            lines += [
                "",
                f"Identity ({ident['recognizer']}; same person below {ident['threshold']:g}; face box found on "
                f"{ident['faces_detected']} inputs, the fixed aligned box on {ident['faces_on_fixed_box']}):",
                "",
                "| edit | same person | 0->1 | 1->0 | mean distance | 0->1 | 1->0 |",
                "|---|---|---|---|---|---|---|",
            ]
            rows = [(name, entry.get("identity", {})) for name, entry in report["attributes"].items()]
            rows += [(f"reference: {key}", entry) for key, entry in ident["reference"].items()]
            for label, entry in rows:
                cells = [label] + [
                    fmt(entry.get(f"{kind}{suffix}"))
                    for kind in ("same_person", "distance")
                    for suffix in ("", " 0->1", " 1->0")
                ]
                lines.append("| " + " | ".join(cells) + " |")
    if "completion" in report:
        lines += ["| completion | hole PSNR (dB) | hole SSIM | hole L1 | whole-image SSIM |", "|---|---|---|---|---|"]
        for label, entry in report["completion"].items():
            lines.append(
                f"| {label} | {fmt(entry['psnr'], 2)} | {fmt(entry['ssim'])} | {fmt(entry['l1'])} | "
                f"{fmt(entry.get('ssim_whole'))} |"
            )
        if report.get("holes"):
            lines += [
                "",
                "Hole sets (seeded per image): the paper's noise masks and a solid box (sides 30-45% of the image) "
                "over each face part:",
                "",
                "| holes | mean area | model hole PSNR | Telea | NS | model - NS (dB) | model whole SSIM "
                "| NS whole SSIM |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for kind, entry in report["holes"].items():
                lines.append(
                    f"| {kind} | {fmt(entry.get('mean_hole_area'))} | {fmt(entry['model']['psnr'], 2)} | "
                    f"{fmt(entry['cv2.inpaint (telea)']['psnr'], 2)} | "
                    f"{fmt(entry['cv2.inpaint (ns)']['psnr'], 2)} | "
                    f"{fmt(entry['psnr_gain_over_ns'], 2)} | {fmt(entry['model']['ssim_whole'])} | "
                    f"{fmt(entry['cv2.inpaint (ns)']['ssim_whole'])} |"
                )
        if report.get("structure"):
            lines += [
                "",
                "Structure in the hole (true attributes given; the judge reads the attribute the box hides; "
                "agreement with the labels, balanced = (TPR + TNR) / 2):",
                "",
                "| box | attribute | positive rate | model | model balanced | cv2 NS | NS balanced | real face "
                "| real balanced |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for kind, by_name in report["structure"].items():
                for name, rows in by_name.items():
                    cells = [kind, name, fmt(rows.get("positive_rate"))]
                    for label in ("model", "cv2.inpaint (ns)", "real face"):
                        row = rows.get(label, {})
                        cells += [fmt(row.get("agreement")), fmt(row.get("balanced"))]
                    lines.append("| " + " | ".join(cells) + " |")
        if report.get("control"):
            lines += [
                "",
                "Attribute control (a hole over the mouth, filled with the attribute flipped; the judge's reading):",
                "",
                "| attribute | success | 0->1 | 1->0 | judge agrees on own-attribute fill |",
                "|---|---|---|---|---|",
            ]
            for name, entry in report["control"].items():
                if name != "hole":
                    lines.append("| " + " | ".join([name] + [fmt(entry.get(k)) for k in CONTROL_METRICS]) + " |")
        lines += [
            "",
            f"Mean hole area {fmt(report['mean_hole_area'])}; raw output PSNR outside the hole "
            f"{fmt(report['preservation']['raw_psnr_outside_hole'], 2)} dB",
        ]
    dist = report.get("distribution")
    if dist:
        lines += [
            "",
            f"{dist['fid_name']} {dist['fid']:.2f}, {dist['kid_name']} {dist['kid_mean']:.4f} "
            f"± {dist['kid_std']:.4f} ({dist['features']}; {dist['num_real']} real vs {dist['num_fake']} "
            "generated)",
        ]
    else:
        lines += ["", "FID/KID: skipped (give --inception_weights or --classifier)"]
    lines += [
        "",
        f"Speed: {report['speed']['images_per_second']:.1f} images/s "
        f"({report['speed']['forward_passes']} forward passes)",
    ]
    if report.get("classifier"):
        lines += [
            "",
            f"Judge: {report['classifier']['run']} (mean validation accuracy "
            f"{fmt(report['classifier']['mean_accuracy'])} balanced; minimum per attribute "
            f"{report['classifier']['min_accuracy']})",
        ]
    return "\n".join(lines) + "\n"


def write_edit_figures(figures, areas, out_dir):
    """figures/edits_<attribute>.png (input, edit, |residual| and attention rows) per attribute of `figures` ({name:
    (images, edited, foreground or None)}) and, when `areas` ({name: attention areas}) is not empty, the attention
    area histogram; returns the paths written."""
    paths = []
    for name, (images, edited, foreground) in figures.items():
        residual = to_float(np.abs(edited.astype(np.float32) - images.astype(np.float32)))
        rows = [("input", to_float(images)), (f"{name} flipped", to_float(edited)), ("|residual|", residual)]
        if foreground is not None:
            rows.append(("attention", foreground * 2.0 - 1.0))
        path = out_dir / f"edits_{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(make_grid(rows), cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    if areas:
        path = out_dir / "attention_area_histogram.png"
        cv2.imwrite(str(path), histogram_image(areas))
        paths.append(str(path))
    return paths


def write_completion_figures(figure, control_figure, out_dir):
    """figures/completions.png from `figure` and figures/control_<name>.png from each entry of `control_figure` (rows
    of (label, uint8 images)); returns the paths written."""
    paths = []
    for path, rows in [(out_dir / "completions.png", figure)] + [
        (out_dir / f"control_{name}.png", rows) for name, rows in control_figure.items()
    ]:
        grid = make_grid([(label, to_float(images)) for label, images in rows])
        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    return paths


def histogram_image(values_by_name, bins=20, width=480, height=160):
    """A PNG-ready BGR image: one histogram over [0, 1] per name, stacked vertically, drawn with OpenCV."""
    panels = []
    for name, values in values_by_name.items():
        counts, _ = np.histogram(np.clip(values, 0.0, 1.0), bins=bins, range=(0.0, 1.0))
        panel = np.full((height, width, 3), 255, np.uint8)
        top, bottom, left, right = 24, height - 20, 10, width - 10
        bar = (right - left) / bins
        peak = max(int(counts.max()), 1)
        for i, count in enumerate(counts):
            x0, x1 = int(left + i * bar + 1), int(left + (i + 1) * bar - 1)
            y0 = int(bottom - (bottom - top) * count / peak)
            cv2.rectangle(panel, (x0, y0), (x1, bottom), (180, 120, 40), -1)
        cv2.line(panel, (left, bottom), (right, bottom), (0, 0, 0), 1)
        for tick in (0.0, 0.5, 1.0):
            x = int(left + tick * (right - left))
            cv2.putText(panel, f"{tick:g}", (max(0, x - 8), height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        cv2.putText(
            panel,
            f"{name}: attention area (n={len(values)}, mean {np.mean(values):.3f}, max count {peak})",
            (left, 16),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        panels.append(panel)
    return np.concatenate(panels, axis=0)
