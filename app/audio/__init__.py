"""Audio I/O without Qt: files now; device streams and rings arrive with the live engine."""
