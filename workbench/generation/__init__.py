"""Generation: the loaded model and its cache, chat prompts, decoding settings, streaming chat, batches."""
