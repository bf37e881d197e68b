"""The Pre-train tab: `tab` composes the corpus box, the config form (with `form_rules` deciding which fields
apply), the size/memory/time estimate (computed by studio.engine.estimates) and the run panel with its probe
view."""
