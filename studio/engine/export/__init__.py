"""Taking a trained model out of the app: a merged transformers folder, GGUF files and an Ollama Modelfile."""
