"""Pre-training: MVLM / TIA / TIM on unlabelled pages, and pre-training on recombined copies of labelled
forms. torch (the `train` extra); the serving path imports nothing from here."""
