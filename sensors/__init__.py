"""Sensor specs, MM-Fi formats, validation, preprocessing, the dataset reader and the simulator (numpy only)."""
