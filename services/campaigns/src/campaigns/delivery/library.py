"""The built-in copy: one template for every step of the ready-made campaigns (`domain.sequences`).

Short and plain on purpose: a win-back that reads like a newsletter is deleted. The first message
names the customer and the relationship; the unhappy sequence owns up to the problem before it
offers anything; every offer shows its code; every email ends with the unsubscribe link. The
escalation (what's new, a gift, 10 %, 15 %, reconnect) is shared, each campaign in its own voice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TemplateSource:
    """A template as written: Jinja2 subject, text and optional HTML (made from the text when absent)."""

    subject: str
    text: str
    html: str | None = None


HELLO = "Hi {{ first_name }},\n\n"
SIGN = "\n\nWarm regards,\nThe team"
FOOTER = (
    "\n\n--\nYou are receiving this because you have been a customer of ours.\n"
    "To stop these messages: {{ unsubscribe_url }}\n"
)
CODE = """
{% if coupon %}

Your code: {{ coupon }} ({{ offer_description }}). Enter it at checkout or show it in store.
{% endif %}
"""
AWAY = "{% if months_away %}{{ months_away }} months{% else %}a while{% endif %}"
PERSONAL_SUBJECT = "{% if name %}{{ first_name }}, we{% else %}We{% endif %} have missed you"


def email(subject: str, body: str) -> TemplateSource:
    return TemplateSource(subject=subject, text=HELLO + body.strip() + SIGN + FOOTER)


def _personal(opening: str) -> TemplateSource:
    return email(
        PERSONAL_SUBJECT,
        opening
        + """
{% if relationship %}
Looking back ({{ relationship }}), we noticed it has been {{ AWAY }} since your last order, and we wanted to say that we miss having you around.
{% else %}
It has been {{ AWAY }} since we last saw you, and we wanted to say that we miss having you around.
{% endif %}

There is no catch and nothing to fill in.{% if favourite_category %} We simply think you will like what we have in {{ favourite_category }} right now.{% endif %}


{{ call_to_action }}: reply to this email or drop by, and we will take it from there.""".replace("{{ AWAY }}", AWAY),
    )


def _escalation(prefix: str, voice: dict[str, str]) -> dict[str, TemplateSource]:
    """The five escalating touches every win-back shares; `voice` adds each campaign's own sentence."""
    return {
        f"{prefix}.whats-new": email(
            "What's new since your last visit",
            voice["whats-new"]
            + "It has been "
            + AWAY
            + """ since your last order, and a lot has changed: new arrivals{% if favourite_category %} in {{ favourite_category }}{% endif %}, quicker delivery and a few old favourites back.

{{ call_to_action }}: it takes two minutes to catch up.""",
        ),
        f"{prefix}.incentive": email(
            "{% if name %}{{ first_name }}, a{% else %}A{% endif %} welcome-back gift for you",
            voice["incentive"]
            + """We would like to welcome you back with {{ offer_description or 'a small gift' }}, on us.
"""
            + CODE
            + """
{{ call_to_action }}: it is yours whenever you are ready.""",
        ),
        f"{prefix}.ten-off": email(
            "{{ offer_description | capitalize if offer_description else 'Something for your next order' }}",
            voice["ten-off"]
            + """We would love to see you again, so here is {{ offer_description or 'something for your next order' }}.
"""
            + CODE
            + """
{{ call_to_action }}: it works on everything{% if favourite_category %}, including {{ favourite_category }}{% endif %}.""",
        ),
        f"{prefix}.fifteen-off": email(
            "Our best offer: {{ offer_description or 'just for you' }}",
            voice["fifteen-off"]
            + """This is the best we can do, and it is only for customers we would really like back: {{ offer_description or 'a special offer' }}.
"""
            + CODE
            + """
{{ call_to_action }} before it runs out.""",
        ),
        f"{prefix}.reconnect": email(
            "Shall we stay in touch?",
            voice["reconnect"]
            + """This is our last note about coming back. If something kept you away, we would really like to know: one line is enough, and a person reads every reply.

{{ call_to_action }}. And if now is not the time, no hard feelings: we will stop writing about this.""",
        ),
    }


_QUIET = {"whats-new": "", "incentive": "", "ten-off": "", "fifteen-off": "", "reconnect": ""}
_SORRY = "{% if leave_reasons_text %}We have not forgotten {{ leave_reasons_text }}. {% endif %}"
_UNHAPPY_VOICE = {
    "whats-new": "Since we last wrote about what went wrong, we have kept working on it. ",
    "incentive": _SORRY + "We would like a chance to show you how things are now.\n\n",
    "ten-off": "We know it takes more than a discount to win back trust, but we hope this helps. ",
    "fifteen-off": _SORRY + "We would still like to make it up to you.\n\n",
    "reconnect": "We are sorry we let you down. ",
}
_VIP_VOICE = {
    "whats-new": "You have been one of our best customers{% if relationship %} ({{ relationship }}){% endif %}. ",
    "incentive": "Our best customers get first look, and that includes you. ",
    "ten-off": "",
    "fifteen-off": "You have meant a lot to us, so this one is bigger. ",
    "reconnect": "You have been one of our best customers, and we would be sorry to lose you. ",
}

_UNHAPPY_ACKNOWLEDGE = email(
    "{% if name %}{{ first_name }}, we{% else %}We{% endif %} owe you an apology",
    """{% if leave_reasons_text %}
Our records show that your last experience with us went wrong: {{ leave_reasons_text }}. That is not the service you should get from us, and we are sorry.
{% else %}
We have a feeling your last experience with us was not what it should have been, and we are sorry.
{% endif %}

{{ what_changed or 'We have looked hard at what went wrong and changed how we work because of it.' }}

{{ call_to_action }}: just reply to this email. A person reads every reply, and we will answer.""",
)

_HIGH_VALUE_CALL = TemplateSource(
    subject="Call {{ name or 'a lapsed high-value customer' }}: ask why they left",
    text="""Who: {{ name or 'name not on file' }}{{ ', ' ~ customer.phone if customer.phone }}{{ ', ' ~ customer.email if customer.email }}
Relationship: {{ relationship or 'no order history on file' }}; {{ revenue }} spent{{ ', ' ~ customer.tier | replace('_', ' ') ~ ' value' if customer.tier }}
Last order: {{ months_away ~ ' months ago' if months_away is not none else 'unknown' }}
Recorded problems: {{ customer.leave_reasons | join(', ') | replace('_', ' ') if customer.leave_reasons else 'none recorded' }}

Goal: {{ call_to_action }}.
Ask what made them stop ordering and whether anything would bring them back. Log the call's outcome with a reason code: it ends or redirects the win-back sequence and shows up in the leave-reason reports.""",
)

BUILT_IN: dict[str, TemplateSource] = {
    # Standard win-back
    "standard.personal": _personal(""),
    **_escalation("standard", _QUIET),
    # Left unhappy: the problem first, offers only after it is acknowledged
    "unhappy.acknowledge": _UNHAPPY_ACKNOWLEDGE,
    **_escalation("unhappy", _UNHAPPY_VOICE),
    # High value: a salesperson calls first, then a personal email
    "high-value.call": _HIGH_VALUE_CALL,
    "high-value.personal": _personal("You were one of our very best customers, and we do not take that lightly.\n\n"),
    **_escalation("high-value", _VIP_VOICE),
    # Light touch: no offers, four short notes
    "light.personal": _personal(""),
    "light.whats-new": email(
        "A quick hello, and what's new",
        "Just a quick note: it has been " + AWAY + " and we have added a lot since then"
        "{% if favourite_category %}, including new {{ favourite_category }}{% endif %}.\n\n{{ call_to_action }}.",
    ),
    "light.feedback": email(
        "What would bring you back?",
        "Could you tell us, in a line or two, what would make you shop with us again? "
        "Every answer is read, and it shapes what we do next.\n\n{{ call_to_action }}.",
    ),
    "light.reconnect": email(
        "One last hello",
        "This is our last note for a while. Whenever you need us, we are here.\n\n{{ call_to_action }}.",
    ),
    # Nurture: they answered but have not bought yet
    "nurture.thanks": email(
        "Thanks for getting back to us",
        "Thank you for your reply; it genuinely helps. We would like to make sure that what we send you "
        "from now on is worth your time.\n\n{{ call_to_action }}: a line or two is enough, "
        "and we will point you to the right things.",
    ),
    "nurture.whats-new": email(
        "New since we last spoke",
        "A few things have arrived since we last spoke{% if favourite_category %}, some of them in "
        "{{ favourite_category }}{% endif %}. We picked the ones we think you will like.\n\n{{ call_to_action }}.",
    ),
    "nurture.inspiration": email(
        "How others are using it",
        "Some of our customers have shared how they use what they buy from us, and a few ideas were too "
        "good to keep to ourselves.\n\n{{ call_to_action }}: you might find your next favourite.",
    ),
    "nurture.incentive": email(
        "Something to get you started",
        "To make your next order easy, here is {{ offer_description or 'a small gift' }}, on us.\n"
        + CODE
        + "\n{{ call_to_action }}.",
    ),
    "nurture.ten-off": email(
        "{{ offer_description | capitalize if offer_description else 'Something for your next order' }}",
        "Whenever you are ready, this should help: {{ offer_description or 'a little something' }}.\n"
        + CODE
        + "\n{{ call_to_action }}.",
    ),
    "nurture.season": email(
        "This season's picks",
        "The season has changed and so has what we have in store{% if favourite_category %}, "
        "{{ favourite_category }} included{% endif %}. Here are the picks our team is most excited about.\n\n"
        "{{ call_to_action }}.",
    ),
    "nurture.reconnect": email(
        "Still here when you need us",
        "We will not fill your inbox: this is our last note for now. If there is anything we can help with, "
        "a reply is all it takes.\n\n{{ call_to_action }}.",
    ),
}
