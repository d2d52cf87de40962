"""Image and mask arithmetic: decoding photos, full-size upsampling of probability maps, refinement along the outline, run-length encoding, Dice.

numpy and Pillow only: no TensorFlow, so the encode and evaluate jobs start fast
and editing the models reruns none of them."""
