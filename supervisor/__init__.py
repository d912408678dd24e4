"""hailo-vision supervisor: starts and restarts the API front-end and the NPU worker."""
