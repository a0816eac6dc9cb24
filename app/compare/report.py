"""Scores for every path of a comparison, and the report: JSON, an HTML page, the WAVs (caller's thread).

The HTML page is the one to open: a table of bitrate and quality per path, the figure, and a
player per path so the outputs can be heard one after another.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.compare.runner import PathResult
from app.config import SAMPLE_RATE_HZ
from app.quality import VISQOL_MISSING, intelligibility, visqol_available, visqol_speech

__all__ = ["REPORT_JSON", "REPORT_HTML", "FIGURE_PNG", "build_report", "measured_lag_ms", "write_report"]

REPORT_JSON, REPORT_HTML, FIGURE_PNG = "report.json", "report.html", "figure.png"
MAX_LAG_S = 0.1  # a path that lagged more than this would be a bug in its delay bookkeeping


def measured_lag_ms(reference: np.ndarray, degraded: np.ndarray, rate_hz: int = SAMPLE_RATE_HZ) -> tuple[float, float]:
    """(lag of `degraded` behind `reference` in ms, the normalized correlation at that lag).

    Every output is meant to be aligned (lag 0): this checks it, it does not correct it. A low
    correlation (noise from a stand-in) makes the lag meaningless.
    """
    n, max_lag = len(reference), int(MAX_LAG_S * rate_hz)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(degraded, size) * np.conj(np.fft.rfft(reference, size))
    corr = np.fft.irfft(spectrum, size)
    window = np.concatenate([corr[-max_lag:], corr[: max_lag + 1]])  # lags -max_lag..+max_lag
    best = int(np.argmax(np.abs(window)))
    norm = float(np.linalg.norm(reference) * np.linalg.norm(degraded)) or 1.0
    return (best - max_lag) * 1000 / rate_hz, float(abs(window[best]) / norm)


def _scores(reference: np.ndarray, result: PathResult, visqol: bool) -> dict:
    lag_ms, correlation = measured_lag_ms(reference, result.audio)
    scores: dict = {"lag_ms": round(lag_ms, 3), "correlation": round(correlation, 4)}
    figures = intelligibility(reference, result.audio, SAMPLE_RATE_HZ)
    scores.update({k: round(v, 4) for k, v in (figures or {}).items()})
    if visqol:
        value = visqol_speech(reference, result.audio, SAMPLE_RATE_HZ)
        scores["visqol_moslqo"] = None if value is None else round(value, 3)
    return scores


def build_report(source: Path, reference: np.ndarray, results: list[PathResult], model: str,
                 model_note: str | None, visqol: bool, progress: Callable[[str], None] = lambda key: None) -> dict:
    """The report's content: one entry per path, its file, measured bitrate and scores."""
    notes = [model_note] if model_note else []
    if visqol and not visqol_available():
        notes.append(VISQOL_MISSING)
        visqol = False
    paths = []
    for result in results:
        progress(result.key)
        paths.append({"key": result.key, "label": result.label, "family": result.family,
                      "file": f"{result.key}.wav",
                      "bitrate_bps": None if result.bitrate_bps is None else round(result.bitrate_bps, 1),
                      "compute_s": round(result.compute_s, 3), **_scores(reference, result, visqol)})
    return {"input": str(source), "duration_s": round(len(reference) / SAMPLE_RATE_HZ, 3),
            "sample_rate_hz": SAMPLE_RATE_HZ, "model": model, "stand_in": model_note is not None,
            "notes": notes, "paths": paths}


def _table(report: dict) -> str:
    columns = [("label", "path"), ("bitrate_bps", "bitrate (bps)"), ("stoi", "STOI"), ("estoi", "ESTOI"),
               ("visqol_moslqo", "ViSQOL MOS-LQO"), ("lag_ms", "lag (ms)")]
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns) + "<th>listen</th>"
    rows = []
    for path in report["paths"]:
        cells = "".join(f"<td>{html.escape('' if path.get(key) is None else str(path.get(key)))}</td>"
                        for key, _ in columns)
        audio = f'<audio controls preload="none" src="{html.escape(path["file"])}"></audio>'
        rows.append(f"<tr>{cells}<td>{audio}</td></tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def html_page(report: dict, figure: bool) -> str:
    notes = "".join(f'<p class="note">{html.escape(note)}</p>' for note in report["notes"])
    image = f'<img src="{FIGURE_PNG}" alt="quality against bitrate, and a spectrogram per path">' if figure else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Mimi Live: compare {html.escape(Path(report['input']).name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} td,th{{padding:4px 10px;text-align:left}}
tr:nth-child(even){{background:#f0f0f0}} .note{{color:#a33}} img{{max-width:100%}}</style></head><body>
<h1>{html.escape(Path(report['input']).name)}: {report['duration_s']} s through every path</h1>
<p>Model: {html.escape(report['model'])}. Every output is aligned with the input (lag 0 when
its delay bookkeeping is right). STOI/ESTOI: 0..1, intelligibility; ViSQOL MOS-LQO: 1..5, speech mode.</p>
{notes}{_table(report)}{image}
</body></html>
"""


def write_report(out_dir: Path, report: dict, figure_png: bytes | None) -> None:
    """report.json, report.html and figure.png, each written whole (temporary name, then rename)."""
    files = {REPORT_JSON: (json.dumps(report, indent=1) + "\n").encode(),
             REPORT_HTML: html_page(report, figure_png is not None).encode()}
    if figure_png is not None:
        files[FIGURE_PNG] = figure_png
    for name, data in files.items():
        part = out_dir / f".{name}.part"
        try:
            part.write_bytes(data)
            os.replace(part, out_dir / name)
        finally:
            part.unlink(missing_ok=True)
