"""Synthetic form corpus at scale (`docextract synth`). No torch; Faker is imported lazily."""
