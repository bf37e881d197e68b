"""A tab's last settings (model, dataset, every form value), kept across restarts in the app's settings."""

from __future__ import annotations

import yaml

from studio.ui import settings


class TabMemory:
    def __init__(self, key: str, config_cls: type):
        self.key = f"{key}/last_config"
        self.config_cls = config_cls

    def save(self, cfg) -> None:
        from studio.engine.config import to_dict

        data = to_dict(cfg)
        data.pop("resume_from", None)  # a resume is a one-off, never a setting to come back to
        settings.set_value(self.key, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

    def load(self):
        """The remembered config, or None when there is none or it no longer reads (an older version's)."""
        from studio.engine.config import from_dict
        from studio.engine.errors import StudioError

        text = settings.value(self.key, "", str)
        if not text:
            return None
        try:
            cfg = from_dict(yaml.safe_load(text), source="the remembered settings")
        except (StudioError, yaml.YAMLError, TypeError):
            return None
        return cfg if isinstance(cfg, self.config_cls) else None
