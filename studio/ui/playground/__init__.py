"""Sub-widgets of the Prompt playground tab."""
