"""The LayoutLMv2-style network in torch: layers and the encoder with its heads."""
