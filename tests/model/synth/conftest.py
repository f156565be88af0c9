"""Shared synthetic-corpus fixtures: one sample of pages rendered once per test session."""

import pytest

from model.synth.page import SynthPage, render_page

SAMPLE_SIZE = 30


@pytest.fixture(scope="session")
def synth_sample() -> list[SynthPage]:
    """Pages 0..29 of corpus seed 7 in the FUNSD schema."""
    return [render_page(7, index) for index in range(SAMPLE_SIZE)]


@pytest.fixture(scope="session")
def invoice_sample() -> list[SynthPage]:
    """Pages 0..9 of corpus seed 7 in the invoice schema."""
    return [render_page(7, index, "invoice") for index in range(10)]
