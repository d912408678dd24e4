"""CPU backend on ONNX Runtime: Qwen2-VL and CLIP runners for Hugging Face export layouts."""
