"""hailo-vision NPU worker: owns the inference backend (HailoRT or ONNX Runtime)."""
