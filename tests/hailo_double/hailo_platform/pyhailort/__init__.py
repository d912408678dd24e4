"""HailoRT's Python bindings package (test double)."""
