"""The Keras models, their losses, data pipelines, training and prediction: the only part that imports TensorFlow."""
