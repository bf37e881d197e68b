"""In-context learning in the playground, one concern a module (all light: no torch):

- `sampling`: how a reply is generated (SamplingSettings, declared with knobs);
- `templates`: the completion-mode example template;
- `presets`: few-shot examples and presets saved as JSON;
- `render`: the exact text the model receives, in chat and completion mode;
- `dataset_export`: examples and good replies saved as a fine-tuning dataset;
- `batch_files`: batch prompt files in, results out;
- `errors`: BadPrompt and BadPreset.

What fits in the context window (and the prompt inspector's facts) is in studio.engine.prompt_fit.
The names below are the package's public surface, for callers that import them from here.
"""

from studio.engine.prompting.dataset_export import DATASET_FORMATS, example_conversations, save_dataset
from studio.engine.prompting.errors import BadPreset, BadPrompt
from studio.engine.prompting.presets import MODES, PRESET_VERSION, Example, Preset, load_preset, save_preset
from studio.engine.prompting.render import chat_messages, check_conversation, render, render_chat, render_completion
from studio.engine.prompting.sampling import SamplingSettings
from studio.engine.prompting.templates import (DEFAULT_COMPLETION_TEMPLATE, EXAMPLE_SEPARATOR, check_template,
                                               fill_template)

__all__ = ["BadPreset", "BadPrompt", "DATASET_FORMATS", "DEFAULT_COMPLETION_TEMPLATE", "EXAMPLE_SEPARATOR", "MODES",
           "PRESET_VERSION", "Example", "Preset", "SamplingSettings", "chat_messages", "check_conversation",
           "check_template", "example_conversations", "fill_template", "load_preset", "render", "render_chat",
           "render_completion", "save_dataset", "save_preset"]
