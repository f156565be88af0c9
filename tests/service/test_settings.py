from pathlib import Path

import pytest

from service.settings import Settings, get_settings


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch):
    for name in ("DOCEXTRACT_HOST", "DOCEXTRACT_PORT", "DOCEXTRACT_DATA_DIR", "DOCEXTRACT_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 8000, Path("data"))


def test_environment_is_read_when_settings_are_built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("DOCEXTRACT_PORT", "9123")
    monkeypatch.setenv("DOCEXTRACT_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.port == 9123 and settings.data_dir == tmp_path


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DOCEXTRACT_PORT", "70000")
    with pytest.raises(ValueError, match="port"):
        Settings()


def test_get_settings_is_cached():
    get_settings.cache_clear()
    assert get_settings() is get_settings()
    get_settings.cache_clear()


def test_ingestion_and_ocr_defaults(monkeypatch: pytest.MonkeyPatch):
    for name in ("MAX_UPLOAD_BYTES", "MAX_PAGES", "MAX_PAGE_PIXELS", "PDF_DPI", "OCR_QUALITY", "OCR_PSM"):
        monkeypatch.delenv(f"DOCEXTRACT_{name}", raising=False)
    settings = Settings()
    assert (settings.max_upload_bytes, settings.max_pages, settings.max_page_pixels) == (
        52428800,
        100,
        40_000_000,
    )
    assert (settings.pdf_dpi, settings.ocr_quality, settings.ocr_psm, settings.ocr_language) == (
        200,
        "accurate",
        None,
        "eng",
    )


def test_ingestion_and_ocr_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DOCEXTRACT_PDF_DPI", "300")
    monkeypatch.setenv("DOCEXTRACT_OCR_PSM", "6")
    monkeypatch.setenv("DOCEXTRACT_OCR_DETECT_ORIENTATION", "false")
    settings = Settings()
    assert (settings.pdf_dpi, settings.ocr_psm, settings.ocr_detect_orientation) == (300, 6, False)
    monkeypatch.setenv("DOCEXTRACT_OCR_QUALITY", "best")
    with pytest.raises(ValueError, match="ocr_quality"):
        Settings()
