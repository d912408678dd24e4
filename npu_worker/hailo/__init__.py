"""The HailoRT backend: Qwen2-VL via hailo_platform.genai.VLM and a CLIP image encoder HEF on one VDevice.

hailo_platform is imported only when the backend loads (never at import time), so this package is
importable on machines without HailoRT.
"""
