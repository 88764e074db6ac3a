"""Training, evaluation and the predictor shared by batch scoring and the API."""
