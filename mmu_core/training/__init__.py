"""Training from data: the backbone's ITC + ITM recipes (pretrain, fine-tune, Retrain) in
`recipes`, the embedded generators' training in `generators`, and the accelerate plumbing
they (and MVI's fit, the Finetune baseline) share in `distributed`.

May import: data, models.
"""
