"""Fine-tuning, evaluation, checkpoints, ONNX export and its graph rewrites, weight averages. torch (the
`train` extra); the serving path imports nothing from here."""
