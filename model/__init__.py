"""docextract model: data formats, features, the LayoutLMv2-style encoder, training and runtime.

The modules at the top of the package (and `synth/`) need no torch: they are what serving imports (config,
boxes, features, decode, relations, runtime, artifact, funsd, ...). torch lives in the folders named in
`TORCH_PACKAGES`: the network (`nn/`), fine-tuning and export (`train/`), pre-training (`pretrain/`), which
the serving path never imports. This package never imports `service`.
"""

TORCH_PACKAGES: tuple[str, ...] = ("model.nn", "model.train", "model.pretrain")
