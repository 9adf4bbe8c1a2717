"""The models: the BLIP backbone and its one factory for embedded names, folders and hub
ids (`backbone`, `embedded`), the frozen cross-modal generators MVI reads (`captioner`,
`painter`, `embedded_generators`, `generators`), the IS-style image classifier, and the
lock every build and load holds (`building`: loaders patch torch process-wide).

May import: data.
"""
