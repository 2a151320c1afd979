"""One TFX component per file."""
