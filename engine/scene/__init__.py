"""Scene facts from masks and pixels: per-instance facts, colours, masks, synthetic scenes."""
