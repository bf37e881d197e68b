"""Evaluate: score a base model, k-shot prompts and fine-tuned models side by side on a held-out file.

`config` (the knobs, light), `heldout` (reading the held-out file), `shots` (choosing in-context examples),
`candidates` (what is compared), `scoring` (batched log-likelihood, generation, perplexity), `metrics`,
`recommend` (the plain-words verdict) and `recipe` (the worker's job that writes results.json and
examples.jsonl into the evaluation's run folder). See `results` for the file layout.
"""
