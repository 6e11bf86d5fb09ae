"""mkdocs hooks (mkdocs.yml ``hooks:``) for the documentation site.

mkdocs-typer2 inserts the CLI's help into the page as HTML elements, whose text Markdown's inline
patterns then read: a usage line such as ``ganctl export [OPTIONS] [RUN_DIR]`` looks to
mkdocs-autorefs like a reference link ``[OPTIONS][RUN_DIR]``, which strict mode would report as
missing. On the CLI reference page those are usage text: they are put back as written.
"""

from __future__ import annotations

import re
from typing import Any

CLI_PAGE = "reference/cli.md"
_AUTOREF = re.compile(r'<autoref\b[^>]*?\bidentifier="(?P<identifier>[^"]*)"[^>]*>(?P<title>.*?)</autoref>', re.S)


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != CLI_PAGE:
        return html
    return _AUTOREF.sub(lambda m: f"[{m['title']}] [{m['identifier']}]", html)
