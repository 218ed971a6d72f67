"""Data sources: task folders, synthetic tasks, MedMNIST."""
