"""The Jinja templates of the subscriber's pages.

Kept in Python rather than in template files so they ship with every install of the package
(a wheel carries modules, not stray data files). Pages work without JavaScript: plain forms
that POST, and a redirect back to the page after each change.
"""

from __future__ import annotations

BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ heading }} - Paperboy</title>
<style>
body { font-family: system-ui, sans-serif; color: #1f2937; line-height: 1.5; }
main { max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #e5e7eb; }
label { display: block; font-weight: 600; margin-top: .9rem; }
.hint { font-weight: 400; color: #6b7280; font-size: .85rem; }
input[type=text], input[type=email], input[type=number], select, textarea {
  width: 100%; box-sizing: border-box; padding: .4rem; font: inherit;
  border: 1px solid #d1d5db; border-radius: 4px; }
textarea { min-height: 4.5rem; }
.row { display: flex; gap: 1rem; } .row > div { flex: 1; }
button { margin-top: 1rem; padding: .5rem 1.1rem; font: inherit; border-radius: 4px;
  border: 1px solid #1d4ed8; background: #1d4ed8; color: #fff; cursor: pointer; }
button.plain { background: #fff; color: #1d4ed8; }
button.danger { background: #b91c1c; border-color: #b91c1c; }
.notice { background: #ecfdf5; border: 1px solid #a7f3d0; padding: .5rem .8rem; }
.error { background: #fef2f2; border: 1px solid #fecaca; padding: .5rem .8rem; }
.invalid { border-color: #b91c1c !important; }
ol.papers li { margin-bottom: .7rem; } .why { color: #4b5563; font-size: .9rem; }
.actions form { display: inline-block; margin-right: .5rem; }
</style>
</head>
<body><main>
<h1>{{ heading }}</h1>
{% block body %}{% endblock %}
</main></body>
</html>
"""

MESSAGE = """{% extends "base.html" %}{% block body %}
<p>{{ message }}</p>
{% if link_url %}<p><a href="{{ link_url }}">{{ link_text }}</a></p>{% endif %}
{% endblock %}"""

UNSUBSCRIBE = """{% extends "base.html" %}{% block body %}
<p>Stop sending Paperboy digests to <strong>{{ email }}</strong>?</p>
<form method="post">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form>
{% endblock %}"""

CONFIRM = """{% extends "base.html" %}{% block body %}
<p>Start sending Paperboy digests to <strong>{{ email }}</strong>?</p>
<form method="post">
<button type="submit" id="confirm">Yes, confirm my subscription</button>
</form>
{% endblock %}"""

# The interest and schedule fields, shared by the sign-up and the preferences forms.
FIELDS = """{% macro field_class(name) %}{% if error_field == name %} class="invalid"{% endif %}\
{% endmacro %}
<h2>What you read</h2>
<label for="keywords">Keywords <span class="hint">one per line or comma-separated</span></label>
<textarea id="keywords" name="keywords"{{ field_class("keywords") }}>{{ form.keywords }}</textarea>
<label for="authors">Authors you follow <span class="hint">one per line</span></label>
<textarea id="authors" name="authors"{{ field_class("authors") }}>{{ form.authors }}</textarea>
<label for="categories">arXiv categories <span class="hint">e.g. cs.LG stat.ML</span></label>
<input type="text" id="categories" name="categories" value="{{ form.categories }}">
<label for="description">Describe your research <span class="hint">free text, one topic per \
line</span></label>
<textarea id="description" name="description">{{ form.description }}</textarea>
<label for="seeds">Papers you liked <span class="hint">arXiv ids or URLs, DOIs or titles, one \
per line</span></label>
<textarea id="seeds" name="seeds"{{ field_class("seeds") }}>{{ form.seeds }}</textarea>
<label for="library">Import a library <span class="hint">paste a BibTeX file or a Zotero \
CSL-JSON export</span></label>
<textarea id="library" name="library"{{ field_class("library") }}>{{ form.library }}</textarea>
<h2>When and how much</h2>
<div class="row">
<div><label for="frequency">Frequency</label>
<select id="frequency" name="frequency"{{ field_class("frequency") }}>
{% for value in frequencies %}<option value="{{ value }}"\
{% if value == form.frequency %} selected{% endif %}>{{ value }}</option>{% endfor %}
</select></div>
<div><label for="send_hour">Send at (local hour)</label>
<select id="send_hour" name="send_hour"{{ field_class("send_hour") }}>
{% for hour in range(24) %}<option value="{{ hour }}"\
{% if hour|string == form.send_hour|string %} selected{% endif %}>{{ "%02d:00"|format(hour) }}\
</option>{% endfor %}
</select></div>
<div><label for="digest_size">Papers per digest</label>
<input type="number" id="digest_size" name="digest_size" min="1" max="50" \
value="{{ form.digest_size }}"{{ field_class("digest_size") }}></div>
</div>
<label for="timezone">Time zone</label>
<select id="timezone" name="timezone"{{ field_class("timezone") }}>
{% for zone in timezones %}<option{% if zone == form.timezone %} selected{% endif %}>\
{{ zone }}</option>{% endfor %}
</select>
<label for="name">Your name <span class="hint">optional, used to greet you</span></label>
<input type="text" id="name" name="name" value="{{ form.name }}">
"""

ERRORS = """{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
{% if notice %}<p class="notice" role="status">{{ notice }}</p>{% endif %}"""

SIGNUP = """{% extends "base.html" %}{% block body %}
<p>A short e-mail of the newest papers that match what you read, at your local morning.</p>
{% include "errors.html" %}
<form method="post" action="/signup">
<label for="email">E-mail address</label>
<input type="email" id="email" name="email" required value="{{ form.email }}"\
{% if error_field == "email" %} class="invalid"{% endif %}>
{% include "fields.html" %}
<button type="submit" id="sign-up">Sign up</button>
<p class="hint">We will send one e-mail to confirm the address; nothing else until you do.</p>
</form>
{% endblock %}"""

PAPERS = """{% macro papers(items) %}<ol class="papers">
{% for item in items %}<li><a href="{{ item.url }}" rel="noreferrer">{{ item.title }}</a>
<div class="why">Why: {{ item.reason }}</div></li>{% endfor %}
</ol>{% endmacro %}"""

PREFERENCES = """{% extends "base.html" %}{% from "papers.html" import papers %}\
{% block body %}
<p>Digests for <strong>{{ user.email }}</strong>: \
<strong id="status">{{ status_text }}</strong>.</p>
{% include "errors.html" %}
<form method="post" action="{{ urls.save }}" id="preferences">
{% include "fields.html" %}
{% if seeds %}<h2>Seed papers</h2>
<p class="hint">Papers you named; tick one to forget it.</p>
{% for seed in seeds %}<label class="hint"><input type="checkbox" name="remove_seed" \
value="{{ seed.id }}"> {{ seed.title }}</label>{% endfor %}{% endif %}
<button type="submit" id="save">Save preferences</button>
</form>

<h2 id="preview">Your next digest (preview)</h2>
{% if preview.items %}{{ papers(preview.items) }}{% else %}<p>Nothing yet: {{ preview.note }}.</p>\
{% endif %}

{% if last_digest %}<h2>Your last digest ({{ last_period }})</h2>
{{ papers(last_digest) }}{% endif %}

<h2>Your subscription</h2>
<div class="actions">
{% if user.status == "active" %}<form method="post" action="{{ urls.pause }}">\
<button type="submit" class="plain" id="pause">Pause digests</button></form>
{% elif user.status in ("paused", "unsubscribed") %}<form method="post" action="{{ urls.resume }}">\
<button type="submit" class="plain" id="resume">{{ "Resume digests" if user.status == "paused" \
else "Subscribe again" }}</button></form>{% endif %}
{% if user.status != "unsubscribed" %}<form method="post" action="{{ urls.unsubscribe }}">\
<button type="submit" class="plain" id="unsubscribe">Unsubscribe</button></form>{% endif %}
</div>
<p><a href="{{ urls.data }}" id="download">Download my data</a> (JSON)</p>
<form method="post" action="{{ urls.delete }}">
<label class="hint"><input type="checkbox" name="confirm" value="yes" required> I want my account \
and all its data deleted; this cannot be undone.</label>
<button type="submit" class="danger" id="delete">Delete my account</button>
</form>
{% endblock %}"""

TEMPLATES = {
    "base.html": BASE,
    "message.html": MESSAGE,
    "unsubscribe.html": UNSUBSCRIBE,
    "confirm.html": CONFIRM,
    "fields.html": FIELDS,
    "errors.html": ERRORS,
    "signup.html": SIGNUP,
    "papers.html": PAPERS,
    "preferences.html": PREFERENCES,
}
