"""SAM3-I (instruction-following SAM3): adapters on transformers' Sam3Model, tokenizer, losses,
curriculum trainer (model.train), evaluation (model.evaluate) and metrics. See README.md."""
