"""Training from data: the backbone's ITC + ITM recipes (pretrain, fine-tune, Retrain) in
`recipes`, and the embedded generators' training in `generators`.

May import: data, models.
"""
