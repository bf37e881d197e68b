"""Pre-training: from scratch (a new tokenizer and model) or continued (an existing model), with causal
(decoders) or masked (encoders) language modelling, on packed blocks of raw text.

- `recipe`: run_pretrain, the worker's entry point (corpus → model → blocks → Trainer → saved model);
- `models`: a new tokenizer and model, or a model to continue, and LoRA on it;
- `blocks`: training and held-out datasets of packed blocks;
- `masking`: batches of blocks, masked with transformers' DataCollatorForLanguageModeling, and masked-token
  accuracy;
- `probes`: the prompts a decoder completes at each evaluation, so a person sees it learn.

Reading and packing the corpus is studio.engine.data.corpus; the config is studio.engine.pretrain_config.
"""
