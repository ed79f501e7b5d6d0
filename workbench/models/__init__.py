"""Models: where a model name points (resolve), the embedded default, this device's dtype and attention,
loading (with quantization) and adapters."""
