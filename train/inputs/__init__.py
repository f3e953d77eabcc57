"""The training side of the input kinds, one module per kind (frame, crop, landmarks,
texture, both) beside what they share (:mod:`edge_app.train.inputs.base`). The device side
(:mod:`edge_app.model.inputs`) names each one by a ``"module:attribute"`` string."""
