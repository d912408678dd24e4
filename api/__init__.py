"""hailo-vision HTTP front-end (OpenAI- and Ollama-compatible)."""
