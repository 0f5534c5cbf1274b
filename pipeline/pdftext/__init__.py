"""Helpers for :mod:`pipeline.extract`: turning pdfminer's positioned text into paragraphs.

- :mod:`.reader`: the only module that touches pdfminer; positioned text pieces per page.
- :mod:`.furniture`: running headers, footers and page numbers.
- :mod:`.layout`: columns, rows and reading order on a page.
- :mod:`.paragraphs`: lines to blocks (paragraphs, headings, list items).
- :mod:`.clean`: string clean-up (characters, bullets, list markers).
- :mod:`.hyphens`: line-end hyphens, decided from the document's own words.

All but the reader are pure functions over small dataclasses, so each rule is unit
tested on hand-made pieces and strings rather than on whole PDFs.
"""
