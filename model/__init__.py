"""The model stage: the quantized QKeras ViT, training, Q/K auto-encoder, fixed masks, polarization.

Modules (each one job): ``config`` (ViTConfig), ``data`` (digits / user .npz),
``layers`` (our Keras layers), ``vit`` (the builder), ``train``, ``storage``,
``autoencoder``, ``statistics``, ``masks``, ``polarize``, ``mask_artifact``,
``mask_import`` (masks made elsewhere, convention checked), ``mask_stage`` (the masks stage,
without TensorFlow), ``pipeline`` (the stages), ``plots``, ``run_layout`` (the run folder:
stage folder and file names, for every stage of the flow).
"""
