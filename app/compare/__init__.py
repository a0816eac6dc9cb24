"""Mimi against the classic codecs on a file: every path's output, quality figures and a report
(caller's thread; no audio devices, no Qt: the report's figure is drawn by app/ui/report_figure.py).
"""
