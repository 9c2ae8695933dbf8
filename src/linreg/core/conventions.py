"""What the params and the artifacts agree on, in a module that imports nothing: a stage that
reads no params (evaluate) does not pay for pydantic."""

# A weight per feature: past a thousand, the weights are not typed by hand any more.
MAX_FEATURES = 1000
# The target column as the pipeline names it; a feature may not take the predictions' name.
PREDICTION_SUFFIX = "_pred"
# float32's largest finite value: what a number that reaches a float32 tensor may be at most.
FLOAT32_MAX = 3.4028234663852886e38
# The model kinds train.model may name, each with the class that builds it as "module:Class",
# imported only where a model is built or loaded (params need no torch). A new kind is one
# class in one file (core/model.py says what it gives) and its line here.
MODELS = {
    "parameters": "linreg.core.model:ParameterModel",
    "linear": "linreg.core.model:LinearLayerModel",
}
