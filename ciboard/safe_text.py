"""Text people wrote (meeting notes, an action, a why), made safe to show as Markdown: its
bold, lists and links stay, but nothing in it loads from elsewhere, runs, or is read as markup
it did not mean.

Streamlit's `st.markdown` (without unsafe_allow_html, as the app always calls it) shows raw
HTML as text, but turns `![alt](url)` into an <img> the reader's browser fetches as soon as
the page draws: a note could make every vendor's browser call a server of its writer's
choosing (a tracking pixel). Widget, expander and link labels render images too. So four
characters are written as HTML entities, which Markdown always shows as the character and
never reads as syntax:

- `!` before `[`, which leaves no image of any form: inline `![x](url)`, reference `![x][r]`
  with its `[r]: url` elsewhere, shortcut `![r]`, an image inside a link `[![x](url)](link)`.
  What is left is a link, which loads nothing until someone clicks it.
- `<`: no raw HTML (`<img src=x onerror=…>`, comments) and no `<http://…>` autolink,
  whatever a renderer's HTML setting.
- `&`, so `&lt;img&gt;` or `&#33;` reads as typed rather than as the character it names.
- `$`: Streamlit reads `$…$` as LaTeX, and notes about money are common ("$40 an hour").

Entities, not backslash escapes: a URL written out (`http://e.org/x`) becomes a link up to
the next space, and that link swallows a backslash right after it, which would free the
character the backslash escaped. A backslash the writer typed before one of the four is
dropped, as the entity already shows the character. Inside code spans the entities show as
written; notes rarely hold code, and escaping everywhere is what keeps this simple enough to
trust.
"""

import string

ENTITIES = {"!": "&#33;", "<": "&lt;", "&": "&amp;", "$": "&#36;"}
# What CommonMark lets a backslash escape: every ASCII punctuation character.
ESCAPABLE = frozenset(string.punctuation)


def markdown(text: str | None) -> str:
    """`text` as Markdown that shows its formatting and links but no image, HTML or math."""
    if not text:
        return ""
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and _special(text, i + 1):
            i += 1  # the writer's own escape of a special character: the entity does its work
            continue
        if char == "\\" and i + 1 < len(text) and text[i + 1] in ESCAPABLE:
            out.append(text[i : i + 2])  # any other escape (`\*`) is the writer's, kept whole
            i += 2
            continue
        out.append(ENTITIES[char] if _special(text, i) else char)
        i += 1
    return "".join(out)


def _special(text: str, i: int) -> bool:
    return text[i] in "<&$" or (text[i] == "!" and text.startswith("[", i + 1))
