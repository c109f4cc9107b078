"""The run layer: the one place that combines scanning, the index and notifications (a local scan and its
resume, watch, the distributed scan)."""
