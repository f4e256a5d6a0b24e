"""Message templates: sandboxed Jinja2 over the built-in copy and a workspace's own, and the variables they see.

Templates are written by marketing teams, so they run in Jinja2's immutable sandbox (no attribute
tricks, no mutating what they are given) with strict undefined variables: a typo is an error at
validation, not a blank in 10,000 emails. A template without its own HTML gets one made from its
text, escaped after rendering, so a customer's name can never become markup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaigns.delivery.library import BUILT_IN, TemplateSource
from campaigns.delivery.variables import VARIABLES, message_context

__all__ = ["Rendered", "TemplateError", "TemplateSource", "Templates", "message_context", "validate"]


class TemplateError(ValueError):
    """A template that does not compile or render; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def _env(*, html: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        autoescape=html, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )


_TEXT_ENV = _env(html=False)
_HTML_ENV = _env(html=True)
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n")  # optional paragraphs leave gaps; one blank line is enough
_URL = re.compile(r"https?://[^\s<>\"']+")
_LAYOUT = (
    '<!doctype html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
    '<body style="font-family: sans-serif; line-height: 1.5; max-width: 36em">\n{body}\n</body></html>\n'
)


def _compile(env: ImmutableSandboxedEnvironment, source: str, part: str) -> jinja2.Template:
    try:
        template = env.from_string(source)
        unknown = meta.find_undeclared_variables(env.parse(source)) - VARIABLES - env.globals.keys()
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(f"{part}, line {e.lineno}: {e.message}") from e
    if unknown:
        known = ", ".join(sorted(VARIABLES))
        raise TemplateError(f"{part}: unknown variable(s) {', '.join(sorted(unknown))}; known: {known}")
    return template


@dataclass(frozen=True, slots=True)
class _Compiled:
    subject: jinja2.Template
    text: jinja2.Template
    html: jinja2.Template | None


def _compile_source(source: TemplateSource) -> _Compiled:
    html = _compile(_HTML_ENV, source.html, "html") if source.html is not None else None
    return _Compiled(_compile(_TEXT_ENV, source.subject, "subject"), _compile(_TEXT_ENV, source.text, "text"), html)


def validate(source: TemplateSource) -> None:
    """Raises TemplateError for a syntax error or an unknown variable in any part of `source`."""
    _compile_source(source)


def _linkify(paragraph: str) -> str:
    out, last = [], 0
    for m in _URL.finditer(paragraph):
        url = escape(m.group(0))
        out += [escape(paragraph[last : m.start()]), f'<a href="{url}">{url}</a>']
        last = m.end()
    out.append(escape(paragraph[last:]))
    return "".join(out).replace("\n", "<br>\n")


def html_from_text(subject: str, text: str) -> str:
    """The HTML alternative of a plain-text message: escaped paragraphs, links made clickable."""
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    body = "\n".join(f"<p>{_linkify(p)}</p>" for p in paragraphs)
    return _LAYOUT.format(title=escape(subject), body=body)


_FOOTER = "\n\n--\nTo stop these messages: {url}\n"


def _html_with_link(html: str, url: str) -> str:
    link = f'<p style="font-size: small"><a href="{escape(url)}">Unsubscribe</a></p>'
    return html.replace("</body>", link + "\n</body>") if "</body>" in html else html + link


class Templates:
    """The built-in templates, overridden or extended by custom ones; compiled once, on first use."""

    validate = staticmethod(validate)

    def __init__(self, custom: Mapping[str, TemplateSource] | None = None) -> None:
        self._sources: dict[str, TemplateSource] = {**BUILT_IN, **(custom or {})}
        self._compiled: dict[str, _Compiled] = {}

    def with_custom(self, mapping: Mapping[str, TemplateSource]) -> Templates:
        """A new set in which `mapping` adds templates or replaces those with the same id."""
        return Templates({**self._sources, **mapping})

    def ids(self) -> frozenset[str]:
        return frozenset(self._sources)

    def source(self, template_id: str) -> TemplateSource | None:
        return self._sources.get(template_id)

    def _get(self, template_id: str) -> _Compiled:
        compiled = self._compiled.get(template_id)
        if compiled is None:
            source = self._sources.get(template_id)
            if source is None:
                raise TemplateError(f"no template {template_id!r}")
            try:
                compiled = self._compiled[template_id] = _compile_source(source)
            except TemplateError as e:
                raise TemplateError(f"template {template_id!r}: {e}") from e
        return compiled

    def render(self, template_id: str, context: Mapping[str, object]) -> Rendered:
        """The message for one customer; TemplateError for an unknown id or a template that fails."""
        compiled = self._get(template_id)
        url = context.get("unsubscribe_url")
        # Every email carries its unsubscribe link, even when a custom template forgot it.
        unsubscribe = url if context.get("channel") == "email" and isinstance(url, str) and url else None
        try:
            # One line: a newline in a subject would start a new mail header.
            subject = " ".join(compiled.subject.render(context).split())
            text = _BLANK_LINES.sub("\n\n", compiled.text.render(context)).strip() + "\n"
            if unsubscribe and unsubscribe not in text:
                text = text.rstrip("\n") + _FOOTER.format(url=unsubscribe)
            if compiled.html is None:
                return Rendered(subject, text, html_from_text(subject, text))
            html = compiled.html.render(context)
        except jinja2.TemplateError as e:
            raise TemplateError(f"template {template_id!r}: {e}") from e
        except (TypeError, ValueError, ArithmeticError, LookupError) as e:  # a template's own expression failed
            raise TemplateError(f"template {template_id!r}: {type(e).__name__}: {e}") from e
        if unsubscribe and escape(unsubscribe) not in html:
            html = _html_with_link(html, unsubscribe)
        return Rendered(subject, text, html)
