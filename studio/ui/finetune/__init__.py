"""Parts of the Fine-tune tab; the tab itself is studio.ui.finetune.tab.FineTuneTab."""
