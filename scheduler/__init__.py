"""Scheduling policy: NPU sharing with hailo-ollama, thermal, RAM and degradation."""
