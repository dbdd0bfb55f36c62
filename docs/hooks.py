"""MkDocs hook: docstrings use Sphinx roles (:class:`X`) for the few cross references they make; mkdocstrings
renders Markdown, which shows the role name literally before the code span. Drop the role, keep the code."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|data|mod|attr|exc|obj):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub("", html)
