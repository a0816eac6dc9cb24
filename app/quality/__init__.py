"""Quality figures: how close a decoded signal is to its input (any thread; no audio devices, no Qt).

STOI and ESTOI (pystoi) always; ViSQOL in speech mode when the `quality` extra is installed.
Every score takes the reference and the degraded signal already time-aligned, at one rate.
"""

from app.quality.scores import VISQOL_MISSING, intelligibility, visqol_available, visqol_speech

__all__ = ["VISQOL_MISSING", "intelligibility", "visqol_available", "visqol_speech"]
