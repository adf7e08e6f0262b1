"""Text: sentences, Hugging Face encoders with their layer map, SimCSE training, STS evaluation."""
