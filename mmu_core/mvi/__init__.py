"""Multimodal variational inference (MVI), paper section 4.2, Eq. 1-2 and appendix A:
the model and its ELBO (`model`), fitting and the fit cache (`fit`), anchors (`anchors`).

Frozen cross-modal generators supply the modal-consistent knowledge K' and the decoders
theta_i; this package holds what MVI learns:

- phi_U'_1, phi_U'_2: Gaussian encoders (mean, log-variance; reparameterised) of the
  modal-specific knowledge U'_i of an image (X_1) and of a text (X_2), both into R^d;
- psi_1, psi_2: projectors from U' to a few conditioning tokens in decoder i's space
  (CLIP's for the image decoder, the LM's input space for the text decoder);
- theta_M: the modality classifier p(M | U').

The ELBO's reconstruction terms are the frozen decoders' own losses: the UNet's denoising
loss of X_1 conditioned on [K'; psi_1(U'_1)] with K' = CLIP(X_2), and the LM's negative
log-likelihood of X_2 conditioned on [K'; psi_2(U'_2)] with K' = Q-Former(X_1) (the reading
chosen in docs/method.md). Anchors swap: R_2 = LM([Q-Former(X_1); psi_2(U'_1)]) and
R_1 = UNet([CLIP(X_2); psi_1(U'_2)]).

May import: data, models, training.
"""
