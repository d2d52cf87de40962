"""Any folder of car photos through a trained model: reading, fitting to the model, outputs, the batch run."""
