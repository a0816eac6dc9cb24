"""Audio without Qt: devices, streams and rings, files, recording, timing, metrics, and the live engine."""
