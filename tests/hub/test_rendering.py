"""README and YAML rendering: formatted, and safe whatever a catalog contains."""

from hub.web.rendering import readme_html, yaml_html


def test_readme_is_sanitised():
    html = readme_html(
        "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
        '<a href="javascript:alert(3)">x</a> [y](javascript:alert(4))\n\n| a |\n|---|\n| 1 |\n'
    )
    assert "<h1>Title</h1>" in html
    assert "<script" not in html and "onerror" not in html and 'href="javascript' not in html
    assert "<table>" in html


def test_github_alerts_become_labelled_quotes():
    html = readme_html("> [!WARNING]\n> **Deprecated.** Use the new one.\n")
    assert '<blockquote class="alert alert-warning"><p><strong>Warning</strong>' in html
    assert "[!WARNING]" not in html
    assert "<strong>Deprecated.</strong>" in html


def test_yaml_is_escaped_and_highlighted():
    html = yaml_html("name: <b>bold</b>\n")
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert 'class="highlight"' in html
