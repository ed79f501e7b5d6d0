"""No table header stacks its letters (issue 25, 7): in a real browser, every one-word header of the Overview's
sample table and the Generate tab's review table stays on one line (they were `i/n/p/u/t` and `kee/p`)."""
from __future__ import annotations

import pytest

# (header text, its height, its line height) of every visible header cell.
HEADERS_JS = """() => [...document.querySelectorAll('th .header.text')].filter(e => e.offsetWidth > 0).map(e =>
    [e.innerText.trim(), e.getBoundingClientRect().height, parseFloat(getComputedStyle(e).lineHeight) ||
     1.5 * parseFloat(getComputedStyle(e).fontSize)])"""
SHOWN = """name => [...document.querySelectorAll('th .header.text')].some(e => e.offsetWidth > 0 &&
    e.innerText.trim() === name)"""


def stacked(page) -> list[str]:
    """One-word headers taller than one line."""
    return [f"{text} ({height:.0f}px, line {line:.0f}px)" for text, height, line in page.evaluate(HEADERS_JS)
            if text and " " not in text and height > 1.5 * line]


@pytest.mark.browser
@pytest.mark.slow
def test_no_table_header_stacks_its_letters(page):
    from conftest import screenshot

    page.wait_for_function(SHOWN, arg="input", timeout=180_000)  # the Overview's sample, loaded with the page
    assert not stacked(page), stacked(page)
    page.get_by_role("tab", name="Generate").click()
    page.wait_for_function(SHOWN, arg="keep")
    assert not stacked(page), stacked(page)
    screenshot(page, "generate_review_headers")
