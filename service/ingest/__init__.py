"""Upload bytes -> pages -> words: formats by magic bytes and limits (`load`), the page and word types
(`page`), PDFs through poppler, OCR through tesseract."""
