"""`hailo_platform.genai` (HailoRT 5.0.1+); the 5.0.0 wheel has no such package, so importing it fails."""

from hailo_double_tools.settings import active_profile

if not active_profile().has_genai:
    raise ModuleNotFoundError(
        f"No module named 'hailo_platform.genai' (HailoRT {active_profile().version} has no GenAI API)",
        name="hailo_platform.genai",
    )

from hailo_platform import VDevice
from hailo_platform.pyhailort.pyhailort import GENAI_EXPORTS

globals().update(GENAI_EXPORTS)

__all__ = ["VDevice", *GENAI_EXPORTS]
