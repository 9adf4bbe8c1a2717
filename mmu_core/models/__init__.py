"""The models: the BLIP backbone and its one factory for embedded names, folders and hub
ids (`backbone`, `embedded`), the frozen cross-modal generators MVI reads (`captioner`,
`painter`, `embedded_generators`, `generators`) and the IS-style image classifier.

May import: data.
"""
