"""Widgets shared by the tabs: the loss plot, the config form, the model picker, the error panel."""

from studio.ui.widgets.config_form import ConfigForm
from studio.ui.widgets.error_panel import ErrorPanel
from studio.ui.widgets.loss_plot import LossPlot
from studio.ui.widgets.model_picker import ModelPicker

__all__ = ["ConfigForm", "ErrorPanel", "LossPlot", "ModelPicker"]
