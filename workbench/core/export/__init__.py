"""Export a trained network (ONNX, pt2, safetensors bundle, standalone Python), each checked after writing."""
