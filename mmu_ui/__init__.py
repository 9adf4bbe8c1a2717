"""The Gradio app's pieces: `engine` (shared read-only models, per-visitor results) and one
small factory per tab. `app.py` assembles them; `mmu_core` never imports gradio."""
