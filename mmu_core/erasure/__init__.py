"""The engine behind one forget request as a person makes it, and its inspection: the
request itself (`forget_request`: uploads, teach-first, evidence, Retrain reference),
what was erased (`analysis`, `gradcam`, `inspection`, drawn by `figures`), the HTML
report, the export of the cleaned model with its card (`export`) and the per-visitor
result store (`sessions`) and the worker that runs long jobs (Retrain) in a child process at
the lowest priority (`background`). The app is a shell over this.

May import: data, models, training, metrics, mvi, unlearn.
"""
