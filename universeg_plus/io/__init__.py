"""Reading and writing images and volumes (atomic writes)."""
