"""IoTDA's batch-task API as the reconciler reads it: the SDK adapter (api.py) and its budget."""
