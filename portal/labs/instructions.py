"""A lab's access instructions with the session's values filled in.

The instructions are an admin's text; the values (namespace, username, lab) come from the
session. They are combined like ``str.format_map`` on a fixed dict of plain strings, and
nothing more: a placeholder with attribute or index access, a conversion or a format spec,
or a name not in the dict, stays as written; no template engine ever sees the text. The
result is plain text: templates escape it like any other value.
"""

from string import Formatter

from django.core.exceptions import ValidationError

PLACEHOLDERS = ("namespace", "username", "lab")


def _pieces(text: str):
    try:
        return list(Formatter().parse(text))
    except ValueError:  # a lone "{" or "}"
        return None


def fill(text: str, values: dict[str, str]) -> str:
    pieces = _pieces(text or "")
    if pieces is None:
        return text
    out = []
    for literal, name, spec, conversion in pieces:
        out.append(literal)
        if name is None:
            continue
        if name in values and not spec and conversion is None:
            out.append(str(values[name]))
        else:
            out.append(
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
    return "".join(out)


def for_session(session) -> str:
    return fill(
        session.lab.access_instructions,
        {
            "namespace": session.namespace,
            "username": session.user.get_username(),
            "lab": session.lab.name,
        },
    )


def validate_instructions(text: str) -> None:
    """Only the known placeholders, written plainly ("{namespace}"); "{{" for a brace."""
    pieces = _pieces(text or "")
    if pieces is None:
        raise ValidationError(
            'Unbalanced brace: write "{{" or "}}" for a literal brace.', code="invalid"
        )
    wrong = sorted(
        {
            name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "")
            for _, name, spec, conv in pieces
            if name is not None and (name not in PLACEHOLDERS or spec or conv)
        }
    )
    if wrong:
        raise ValidationError(
            f"Unknown placeholder{'s' if len(wrong) > 1 else ''} "
            f"{', '.join('{' + w + '}' for w in wrong)}; use "
            f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}.",
            code="invalid",
        )
