"""The playground's sampling panel is built from SamplingSettings' declarations."""

from dataclasses import fields

from studio.engine.prompting.sampling import SamplingSettings, sampled_only
from studio.ui.playground.sampling import SamplingPanel


def test_the_panel_has_one_editor_per_setting_with_its_declared_bounds_and_help(qtbot):
    panel = SamplingPanel()
    qtbot.addWidget(panel)
    for f in fields(SamplingSettings):
        editor = getattr(panel, f.name)
        assert editor.toolTip() == f.metadata["help"]
        if f.metadata.get("min") is not None and f.name != "seed":
            assert (editor.minimum(), editor.maximum()) == (f.metadata["min"], f.metadata["max"])
    assert panel.seed.maximum() == 2**31 - 1 and panel.seed.specialValueText() == "random"
    assert panel.settings() == SamplingSettings()


def test_settings_round_trip_and_sampled_only_settings_follow_greedy(qtbot):
    panel = SamplingPanel()
    qtbot.addWidget(panel)
    settings = SamplingSettings(greedy=False, temperature=1.25, top_p=0.5, top_k=7, repetition_penalty=1.3,
                                max_new_tokens=99, min_new_tokens=3, stop_strings=["\n\n", "Q:"], seed=None)
    panel.set_settings(settings)
    assert panel.settings() == settings
    assert panel.stop_strings.text() == "\\n\\n|Q:"
    assert sampled_only() == ["temperature", "top_p", "top_k", "seed"]
    assert all(getattr(panel, name).isEnabled() for name in sampled_only())
    panel.greedy.setChecked(True)
    assert not any(getattr(panel, name).isEnabled() for name in sampled_only())
    assert panel.max_new_tokens.isEnabled()
