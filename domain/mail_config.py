"""A definition's mailbox: the address that opens its cases, how a message maps into case data, and templates.

Templates and the title use `{{ path }}` placeholders (`case.number`, `case.title`, `data.<field>`, `message.subject`,
`message.sender`, ...), filled from plain values only: no attribute access, no expressions, nothing a template author
could use to reach into the server (which `str.format` would allow).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.errors import FieldError

# where a mapped case-data field takes its value from (a message fact)
SOURCES = ("sender", "sender_name", "subject", "text", "to", "received_at", "message_id", "mailbox")
ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\s*\}\}")
ROOTS = ("case", "data", "message")
TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
MAX_TEMPLATES = 20
MAX_SUBJECT = 500
MAX_BODY = 20_000


@dataclass(frozen=True)
class EmailTemplate:
    """A message a case sends: subject and plain-text body with placeholders."""

    subject: str
    body: str


@dataclass(frozen=True)
class MailSettings:
    """A definition's mailbox (address "" = none), its case-data mapping, title, templates and acknowledgement."""

    address: str = ""
    title: str = "{{ message.subject }}"
    mapping: dict[str, str] = field(default_factory=dict)  # case data field -> source (SOURCES)
    templates: dict[str, EmailTemplate] = field(default_factory=dict)
    acknowledgement: str = ""  # a template sent to the sender of a message that opened a case ("": none)

    def to_dict(self) -> dict[str, Any]:
        """The settings as stored on the definition ({} when there is no mailbox and no template)."""
        if not self.address and not self.templates:
            return {}
        return {
            "address": self.address, "title": self.title, "mapping": dict(self.mapping),
            "templates": {name: {"subject": t.subject, "body": t.body} for name, t in self.templates.items()},
            "acknowledgement": self.acknowledgement,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> MailSettings:
        raw = raw or {}
        return cls(
            address=str(raw.get("address") or "").lower(),
            title=raw.get("title") or "{{ message.subject }}",
            mapping=dict(raw.get("mapping") or {}),
            templates={name: EmailTemplate(t.get("subject", ""), t.get("body", ""))
                       for name, t in (raw.get("templates") or {}).items()},
            acknowledgement=raw.get("acknowledgement") or "",
        )

    def problems(self) -> list[FieldError]:
        """What is wrong with the settings, each naming its field (under `mail.`)."""
        errors: list[FieldError] = []
        if self.address and not ADDRESS.match(self.address):
            errors.append(FieldError("mail.address", "must be an e-mail address (local@domain)"))
        errors.extend(_template_problems(self.title, "mail.title", 200))
        for name, source in self.mapping.items():
            if not FIELD_NAME.match(name):
                errors.append(FieldError(f"mail.mapping.{name}", "must be a case data field name"))
            if source not in SOURCES:
                errors.append(FieldError(f"mail.mapping.{name}", f"must be one of {', '.join(SOURCES)}"))
        if len(self.templates) > MAX_TEMPLATES:
            errors.append(FieldError("mail.templates", f"at most {MAX_TEMPLATES} templates"))
        for name, template in self.templates.items():
            if not TEMPLATE_NAME.match(name):
                errors.append(FieldError(f"mail.templates.{name}", "a template name is 1-40 of a-z, 0-9 and '-'"))
            errors.extend(_template_problems(template.subject, f"mail.templates.{name}.subject", MAX_SUBJECT))
            errors.extend(_template_problems(template.body, f"mail.templates.{name}.body", MAX_BODY))
            if not template.subject.strip():
                errors.append(FieldError(f"mail.templates.{name}.subject", "must not be empty"))
        if self.acknowledgement and self.acknowledgement not in self.templates:
            errors.append(FieldError("mail.acknowledgement", f"no template {self.acknowledgement!r}"))
        return errors


def _template_problems(text: str, path: str, limit: int) -> list[FieldError]:
    if not isinstance(text, str) or len(text) > limit:
        return [FieldError(path, f"must be text of at most {limit} characters")]
    errors = []
    for match in PLACEHOLDER.finditer(text):
        if match.group(1).split(".")[0] not in ROOTS:
            errors.append(FieldError(path, f"unknown placeholder {match.group(0)!r} (use case., data. or message.)"))
    return errors


def _lookup(values: Mapping[str, Any], path: str) -> str:
    current: Any = values
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    if current is None:
        return ""
    if isinstance(current, list):
        return ", ".join(str(item) for item in current)
    return str(current)


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill `{{ path }}` placeholders from values (a missing value is empty)."""
    return PLACEHOLDER.sub(lambda match: _lookup(values, match.group(1)), template)


def mapped_data(mapping: Mapping[str, str], facts: Mapping[str, Any]) -> dict[str, Any]:
    """Case data from a message's facts by a definition's mapping (empty facts are left out)."""
    return {name: facts[source] for name, source in mapping.items() if facts.get(source) not in (None, "", [])}
