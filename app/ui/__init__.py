"""The Qt GUI (GUI thread only, except where a module docstring says otherwise).

`app.app.run_gui` is the entry point; `main_window.MainWindow` is the window, `engine_bridge`
owns the audio engine, `plots` draws the metrics, `controls` holds the settings widgets.
"""
