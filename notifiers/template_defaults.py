"""The default templates: good enough to page someone with, for one event and for a digest
of several (notifiers/templates.py renders them and the overrides).

Each key is what the template renders (model.values.TemplateKey); the variables are those
of notifiers/template_context.py.
"""

from __future__ import annotations

__all__ = ["DEFAULTS", "PRE"]

_SUBJECT = "[{{ severity|upper }}] {{ event.summary }}"

_EVENT_TEXT = """\
{{ event.summary }}

Severity:  {{ severity }}
Provider:  {{ event.provider }}
Resource:  {{ title }} ({{ event.resource.kind }} {{ event.resource.id }})
{% if to_state is not none %}
State:     {{ from_state if from_state is not none else "—" }} → {{ to_state }}
{% endif %}
{% if url %}
Link:      {{ url }}
{% endif %}
Event:     {{ event.type }} #{{ event.seq }} at {{ event.detected_at }}
{% if changes %}

Changes:
{% for c in changes %}
  {{ c.path }}: {{ c.old }} → {{ c.new }}
{% endfor %}
{% endif %}

--
statehook · event {{ event.id }}
"""

_EVENT_HTML = """\
<div style="border-left: 6px solid {{ color }}; padding: 4px 12px;">
<p style="font-size: 16px; margin: 4px 0;"><strong>{{ event.summary }}</strong></p>
<table style="border-collapse: collapse; font-size: 14px;">
<tr><td style="padding: 2px 12px 2px 0; color: #59636e;">Severity</td><td><strong>{{ severity }}</strong></td></tr>
<tr><td style="padding: 2px 12px 2px 0; color: #59636e;">Provider</td><td>{{ event.provider }}</td></tr>
<tr><td style="padding: 2px 12px 2px 0; color: #59636e;">Resource</td>
<td>{% if url %}<a href="{{ url }}">{{ title }}</a>{% else %}{{ title }}{% endif %}
 ({{ event.resource.kind }} <code>{{ event.resource.id }}</code>)</td></tr>
{% if to_state is not none %}
<tr><td style="padding: 2px 12px 2px 0; color: #59636e;">State</td>
<td>{{ from_state if from_state is not none else "—" }} → <strong>{{ to_state }}</strong></td></tr>
{% endif %}
<tr><td style="padding: 2px 12px 2px 0; color: #59636e;">Event</td>
<td>{{ event.type }} #{{ event.seq }} at {{ event.detected_at }}</td></tr>
</table>
{% if changes %}
<p style="margin: 12px 0 4px;"><strong>Changes</strong></p>
<table style="border-collapse: collapse; font-size: 13px;">
{% for c in changes %}
<tr><td style="padding: 2px 12px 2px 0;"><code>{{ c.path }}</code></td><td>{{ c.old }} → {{ c.new }}</td></tr>
{% endfor %}
</table>
{% endif %}
</div>
<p style="font-size: 12px; color: #59636e;">statehook · event {{ event.id }}</p>
"""

_EVENT_SLACK = """\
{{ mark }} *{% if url %}<{{ url }}|{{ title|mrkdwn }}>{% else %}{{ title|mrkdwn }}{% endif %}*\
  ·  {{ event.provider|mrkdwn }} {{ event.resource.kind|mrkdwn }} `{{ event.resource.id|mrkdwn }}`
{% if to_state is not none %}
*{{ (from_state if from_state is not none else "—")|mrkdwn }}* → *{{ to_state|mrkdwn }}*
{% else %}
{{ event.summary|mrkdwn }}
{% endif %}
"""

_WINDOW_TEXT = """\
{{ event.summary }}

{% for r in resources %}
[{{ r.severity|upper }}] {{ r.title }} ({{ r.provider }} {{ r.kind }} {{ r.id }}){% if r.state is not none %}\
: {{ r.state }}{% endif %}

{% for e in r.events %}
    {{ e.detected_at }}  {{ e.summary }}
{% endfor %}
{% if r.count > r.events|length %}
    … and {{ r.count - r.events|length }} earlier.
{% endif %}
{% if r.url %}
    {{ r.url }}
{% endif %}

{% endfor %}
{% if resources_omitted %}
… and {{ resources_omitted }} more resources.

{% endif %}
--
statehook · window summary {{ event.id }}
"""

_WINDOW_HTML = """\
<p style="font-size: 16px;"><strong>{{ event.summary }}</strong></p>
<table style="border-collapse: collapse; font-size: 14px;">
{% for r in resources %}
<tr style="border-top: 1px solid #d1d9e0;">
<td style="padding: 6px 8px; border-left: 6px solid {{ r.color }}; vertical-align: top;"><strong>{{ r.severity }}\
</strong></td>
<td style="padding: 6px 8px;">{% if r.url %}<a href="{{ r.url }}">{{ r.title }}</a>{% else %}{{ r.title }}{% endif %}\
{% if r.state is not none %}: <strong>{{ r.state }}</strong>{% endif %}<br>
<span style="color: #59636e; font-size: 12px;">{{ r.provider }} {{ r.kind }} <code>{{ r.id }}</code></span>
<ul style="margin: 4px 0; padding-left: 18px; font-size: 13px;">
{% for e in r.events %}<li>{{ e.detected_at }} · {{ e.summary }}</li>
{% endfor %}
</ul></td></tr>
{% endfor %}
</table>
{% if resources_omitted %}<p>… and {{ resources_omitted }} more resources.</p>{% endif %}
<p style="font-size: 12px; color: #59636e;">statehook · window summary {{ event.id }}</p>
"""

_WINDOW_SLACK = """\
{{ mark }} *{{ event.summary|mrkdwn }}*
{% for r in resources[:20] %}
{{ r.mark }} {% if r.url %}<{{ r.url }}|{{ r.title|mrkdwn }}>{% else %}{{ r.title|mrkdwn }}{% endif %}\
{% if r.state is not none %} · *{{ r.state|mrkdwn }}*{% endif %}{% if r.count > 1 %} ({{ r.count }} events){% endif %}

{% endfor %}
{% set more = (resources|length - 20 if resources|length > 20 else 0) + resources_omitted %}
{% if more %}
… and {{ more }} more.
{% endif %}
"""

_HTML_OPEN = ('<!doctype html>\n<html><body style="font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; '
              'color: #1f2328;">\n')


def _either(window: str, event: str, around: tuple[str, str] = ("", "")) -> str:
    """A default that renders a maintenance window's summary (it has `resources`) its own way."""
    return f"{around[0]}{{% if resources %}}\n{window}{{% else %}}\n{event}{{% endif %}}\n{around[1]}"


_TEXT = _either(_WINDOW_TEXT, _EVENT_TEXT)
_HTML = _either(_WINDOW_HTML, _EVENT_HTML, (_HTML_OPEN, "</body></html>\n"))
_SLACK = _either(_WINDOW_SLACK, _EVENT_SLACK)

_DIGEST_SUBJECT = "[{{ severity|upper }}] {{ count }} event{{ '' if count == 1 else 's' }} ({{ window.label }})"

_DIGEST_TEXT = """\
{{ count }} event{{ '' if count == 1 else 's' }} between {{ window.start }} and {{ window.end }}

{% for e in events %}
[{{ e.severity|upper }}] {{ e.event.summary }}
    {{ e.event.provider }} {{ e.event.resource.kind }} {{ e.event.resource.id }} · {{ e.event.type }} \
at {{ e.event.detected_at }}
{% if e.url %}
    {{ e.url }}
{% endif %}

{% endfor %}
{% if omitted %}
… and {{ omitted }} more.

{% endif %}
--
statehook · digest {{ event.id }}
"""

_DIGEST_HTML = """\
<!doctype html>
<html><body style="font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; color: #1f2328;">
<p style="font-size: 16px;"><strong>{{ count }} event{{ '' if count == 1 else 's' }}</strong>
 between {{ window.start }} and {{ window.end }}</p>
<table style="border-collapse: collapse; font-size: 14px;">
{% for e in events %}
<tr style="border-top: 1px solid #d1d9e0;">
<td style="padding: 6px 8px; border-left: 6px solid {{ e.color }};"><strong>{{ e.severity }}</strong></td>
<td style="padding: 6px 8px;">{% if e.url %}<a href="{{ e.url }}">{{ e.event.summary }}</a>{% else %}\
{{ e.event.summary }}{% endif %}<br>
<span style="color: #59636e; font-size: 12px;">{{ e.event.provider }} {{ e.event.resource.kind }}
 <code>{{ e.event.resource.id }}</code> · {{ e.event.type }} at {{ e.event.detected_at }}</span></td></tr>
{% endfor %}
</table>
{% if omitted %}<p>… and {{ omitted }} more.</p>{% endif %}
<p style="font-size: 12px; color: #59636e;">statehook · digest {{ event.id }}</p>
</body></html>
"""

_DIGEST_SLACK = """\
{{ mark }} *{{ count }} event{{ '' if count == 1 else 's' }}* ({{ window.label }})
{% for e in events[:20] %}
{{ e.mark }} {% if e.url %}<{{ e.url }}|{{ e.event.summary|mrkdwn }}>{% else %}{{ e.event.summary|mrkdwn }}{% endif %}

{% endfor %}
{% if count > 20 %}
… and {{ count - 20 }} more.
{% endif %}
"""

DEFAULTS: dict[str, str] = {
    "subject": _SUBJECT,
    "text": _TEXT,
    "html": _HTML,
    "slack": _SLACK,
    "digest_subject": _DIGEST_SUBJECT,
    "digest_text": _DIGEST_TEXT,
    "digest_html": _DIGEST_HTML,
    "digest_slack": _DIGEST_SLACK,
}

PRE = '<!doctype html>\n<html><body><pre style="font-family: inherit; white-space: pre-wrap;">{}</pre></body></html>\n'
"""The HTML part made of a text override: the text in a `<pre>`, so that an email never
says two different things."""
