"""README.txt of an exported model folder: what the folder holds, how to load each format, inputs and outputs."""
import os

from models import image_scores as IS
from inference.export_formats import FORMAT_FILES


def _load_sections(info):
    """README.txt's "how to run it" part: one paragraph per exported format."""
    folder = os.path.basename(os.path.normpath(info["output_dir"]))
    formats = info.get("formats", ["saved_model"])
    sections = [f"Formats in this folder: {', '.join(formats)}. Every format takes the same input and gives the same "
                "outputs (below); no code of the training repository is needed."]
    if "saved_model" in formats:
        sections.append(f"""SavedModel (saved_model.pb, variables/), with TensorFlow:

    import tensorflow as tf
    model = tf.saved_model.load("{folder}")
    out = model.serve(images)        # or model.signatures["serving_default"](images=images)""")
    if "onnx" in formats:
        sections.append(f"""ONNX ({FORMAT_FILES['onnx']}, opset {info['onnx_opset']}), with onnxruntime (no TensorFlow):

    import onnxruntime as ort
    session = ort.InferenceSession("{folder}/{FORMAT_FILES['onnx']}")
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {{"images": images}})))      # images: numpy uint8""")
    if "tflite" in formats:
        sections.append(f"""TFLite / LiteRT ({FORMAT_FILES['tflite']}, builtin ops only), with the LiteRT interpreter
(pip install ai-edge-litert; no TensorFlow):

    from ai_edge_litert.interpreter import Interpreter
    runner = Interpreter(model_path="{folder}/{FORMAT_FILES['tflite']}").get_signature_runner()
    out = runner(images=images)      # images: numpy uint8; a new H, W or N resizes the inputs by itself
    (here "threshold" has shape [1], not [])""")
    checks = info.get("conversion_check") or {}
    if checks:
        sections.append("Checked at export on a fixed 2-image batch against the TensorFlow function: largest relative "
                        "difference " + ", ".join(f"{fmt} {value:.1e}" for fmt, value in checks.items()) + ".")
    return "\n\n".join(sections) + "\n"


def readme_text(info):
    """The README.txt of an export, from its export_info.json dict."""
    threshold = (info["threshold_source"] if info["threshold"] is not None
                 else "none (the run has no held-out scores and no --threshold was given); the output has no "
                      "\"threshold\" key")
    if IS.is_map_score(info["image_score"]):
        score = (f"{IS.describe(info['image_score'], info['topk_percent'])} of anomaly_map smoothed by a Gaussian of "
                 f"sigma {info['smoothing_sigma_px']:g} px\n                                     (image score "
                 f"{info['image_score_name']}; lambda does not enter it)")
    else:
        score = f"anomaly score of eq. 7 at lambda {info['score_lambda']:g} (textures: max over patches)"
    return f"""CBiGAN anomaly detector exported from {info['run_dir']} (step {info['step']}, {info['weights']} weights)
Category {info['category']} ({info['type']}): images are resized to {info['image_size']}x{info['image_size']}; the model
sees {info['patch_size']}x{info['patch_size']} inputs ({info['patches_per_image']} patch(es) per image).

{_load_sections(info)}
Input  images: uint8 tensor [N, H, W, 3] (RGB; repeat gray images to 3 channels). Any H and W, the same for
       all images of one call (call once per size, or resize/pad yourself). The model resizes to
       {info['image_size']}x{info['image_size']} (bilinear without antialiasing, float, not rounded), scales to [-1, 1] and cuts
       the patch grid itself. Large N uses proportionally more memory: pass batches.
Output dict of tensors:
  score                 float32 [N]  {score};
                                     higher = more anomalous
  reconstruction_error  float32 [N]  L_R of eq. 8 (max over patches)
  feature_error         float32 [N]  L_fD of eq. 9 (max over patches, critic features "{info['feature_layer']}")
  anomaly_map           float32 [N, {info['image_size']}, {info['image_size']}]  per-pixel L1 error |x - G(E(x))| summed over
                                     channels, on the resized image (patches stitched); resize it to H x W to overlay
  threshold             float32 []   decision threshold: anomalous when score > threshold
  normalized_score      float32 [N]  score / threshold: above 1 = anomalous (with a threshold only)
Threshold: {threshold}
SavedModel variables: model.image_size, model.patch_size, model.score_lambda, model.image_score (and model.threshold when
present).
"""
