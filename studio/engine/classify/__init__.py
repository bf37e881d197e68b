"""Classification fine-tuning (task "classify"): a sequence-classification head on an encoder or a decoder."""
