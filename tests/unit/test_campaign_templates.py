"""Message templates: every ready-made step has copy that renders for any customer, safely, with its link and code."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from campaigns.delivery.templates import Rendered, TemplateError, Templates, TemplateSource, message_context, validate
from campaigns.domain.machine import coupon_code
from campaigns.domain.model import Offer, Step
from campaigns.domain.sequences import READY_MADE
from cartera_common.events.changes import CustomerSnapshot

NOW = datetime(2025, 9, 1, tzinfo=UTC)
UNSUBSCRIBE = "https://win.example.com/unsubscribe/v1.d3M.YzE.bWFj"
RICH = CustomerSnapshot(
    name="Ana María López",
    email="ana@example.com",
    phone="+34 600 111 222",
    status="lapsed",
    customer_since=datetime(2023, 3, 14, tzinfo=UTC),
    order_count=14,
    revenue=1234.5,
    last_order_at=datetime(2025, 2, 10, tzinfo=UTC),
    favourite_category="flowers",
    tier="high",
    unhappy=True,
    leave_reasons=["delivery_late:courier_strike", "complaint:damaged_goods"],
)
SPARSE = CustomerSnapshot(status="lapsed")
STEPS = {s.template_id: (c, s) for c in READY_MADE.values() for s in c.steps}
TEMPLATES = Templates()


def render(template_id: str, customer: CustomerSnapshot, templates: Templates = TEMPLATES) -> Rendered:
    campaign, step = STEPS[template_id]
    coupon = coupon_code(f"m-{template_id}") if step.offer.kind != "none" else None
    context = message_context(
        customer, campaign_name=campaign.name, step=step, coupon=coupon, unsubscribe_url=UNSUBSCRIBE, now=NOW
    )
    return templates.render(template_id, context)


def test_every_ready_made_step_has_a_built_in_template() -> None:
    assert set(STEPS) <= TEMPLATES.ids()
    assert {"standard.personal", "unhappy.acknowledge", "high-value.call", "light.feedback", "nurture.season"} <= set(
        STEPS
    )


@pytest.mark.parametrize("customer", [RICH, SPARSE], ids=["rich", "sparse"])
@pytest.mark.parametrize("template_id", sorted(STEPS))
def test_every_ready_made_template_renders_for_any_customer(template_id: str, customer: CustomerSnapshot) -> None:
    _, step = STEPS[template_id]
    rendered = render(template_id, customer)
    assert rendered.subject and "\n" not in rendered.subject
    assert len(rendered.text) > 80 and "None" not in rendered.text and "{{" not in rendered.text
    assert step.call_to_action in rendered.text
    if step.channel == "email":
        assert UNSUBSCRIBE in rendered.text and f'href="{UNSUBSCRIBE}"' in rendered.html
        assert rendered.text.startswith("Hi Ana," if customer is RICH else "Hi there,")
    if step.offer.kind != "none":
        code = coupon_code(f"m-{template_id}")
        assert code in rendered.text and code in rendered.html
    if step.offer.percent is not None:
        assert f"{step.offer.percent:g} % off" in rendered.text
    if step.offer.label is not None:
        assert step.offer.label in rendered.text


def test_the_personal_first_message_names_the_customer_and_the_relationship() -> None:
    rendered = render("standard.personal", RICH)
    assert rendered.subject == "Ana, we have missed you"
    assert "customer since 2023, 14 orders, mostly flowers" in rendered.text
    assert "6 months" in rendered.text


def test_the_unhappy_sequence_owns_up_to_the_problem_before_any_offer() -> None:
    rendered = render("unhappy.acknowledge", RICH)
    assert "a late delivery (courier strike)" in rendered.text
    assert "your complaint about damaged goods" in rendered.text
    assert "sorry" in rendered.text
    assert "We have changed how we pack and track every order" in rendered.text
    assert "% off" not in rendered.text and "code" not in rendered.text.lower()
    assert STEPS["unhappy.acknowledge"][1].offer.kind == "none"


def test_the_call_task_briefs_the_salesperson_not_the_customer() -> None:
    rendered = render("high-value.call", RICH)
    assert "Ana María López, +34 600 111 222, ana@example.com" in rendered.text
    assert "delivery late:courier strike" in rendered.text
    assert "1,234.50 spent" in rendered.text
    assert UNSUBSCRIBE not in rendered.text  # not an email: no unsubscribe footer


def test_the_html_escapes_what_the_customer_record_holds() -> None:
    hostile = SPARSE.model_copy(update={"name": "<script>alert(1)</script> Bob", "favourite_category": "a & b"})
    rendered = render("standard.personal", hostile)
    assert "<script>" in rendered.text  # plain text is plain
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html


def test_the_context_falls_back_when_the_customer_is_barely_known() -> None:
    step = STEPS["standard.ten-off"][1]
    context = message_context(SPARSE, campaign_name="c", step=step, coupon=None, unsubscribe_url="u", now=NOW)
    assert context["first_name"] == "there" and context["name"] == ""
    assert context["relationship"] == "" and context["months_away"] is None and context["customer_since"] is None
    assert context["offer_description"] == "10 % off your next order"
    assert context["leave_reasons"] == [] and context["leave_reasons_text"] == ""


def test_leave_reasons_read_as_phrases() -> None:
    customer = SPARSE.model_copy(
        update={"leave_reasons": ["delivery_failed:unspecified", "support_ticket:billing", "odd_kind:x-y"]}
    )
    step = STEPS["unhappy.acknowledge"][1]
    context = message_context(customer, campaign_name="c", step=step, coupon=None, unsubscribe_url="u", now=NOW)
    assert context["leave_reasons"] == [
        "a delivery that never reached you",
        "your support request about billing",
        "odd kind (x y)",
    ]
    assert context["leave_reasons_text"] == (
        "a delivery that never reached you, your support request about billing and odd kind (x y)"
    )


def test_the_sandbox_refuses_attribute_tricks() -> None:
    for trick in ("{{ ''.__class__ }}", "{{ customer.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}"):
        templates = TEMPLATES.with_custom({"evil": TemplateSource("Hi", trick)})
        with pytest.raises(TemplateError, match="unsafe"):
            templates.render("evil", {"customer": {}, "offer": {}})


def test_the_sandbox_refuses_to_mutate_what_it_is_given() -> None:
    templates = TEMPLATES.with_custom({"evil": TemplateSource("Hi", "{{ leave_reasons.append('x') }}")})
    reasons: list[str] = []
    with pytest.raises(TemplateError):
        templates.render("evil", {"leave_reasons": reasons})
    assert reasons == []


def test_validation_names_the_part_and_line_of_a_syntax_error() -> None:
    with pytest.raises(TemplateError, match=r"text, line 2: .*"):
        validate(TemplateSource("Hello", "Hi {{ first_name }}\n{% if coupon %}no end"))
    with pytest.raises(TemplateError, match="html, line 1"):
        validate(TemplateSource("Hello", "Hi", "<p>{{ first_name </p>"))


def test_validation_refuses_a_misspelt_variable() -> None:
    with pytest.raises(TemplateError, match="unknown variable.*frist_name"):
        validate(TemplateSource("Hi {{ frist_name }}", "Hello"))
    validate(
        TemplateSource("Hi {{ first_name }}", "{% for r in leave_reasons %}{{ r }}{% endfor %} {{ customer.email }}")
    )
    validate(TemplateSource("Hi", "{% for i in range(3) %}{{ i }}{% endfor %}{% set x = 1 %}{{ x }}"))


def test_custom_templates_add_and_override_and_always_carry_the_unsubscribe_link() -> None:
    custom = {
        "standard.personal": TemplateSource("Hola {{ first_name }}", "Te echamos de menos."),
        "spring.sale": TemplateSource("Spring", "Hi {{ first_name }}: {{ coupon }}", "<h1>{{ name }}</h1>"),
    }
    templates = TEMPLATES.with_custom(custom)
    assert "spring.sale" in templates.ids() and "spring.sale" not in TEMPLATES.ids()
    personal = render("standard.personal", RICH, templates)
    assert personal.subject == "Hola Ana" and personal.text.startswith("Te echamos de menos.")
    assert UNSUBSCRIBE in personal.text and UNSUBSCRIBE in personal.html
    step = Step(
        delay_days=0,
        channel="email",
        template_id="spring.sale",
        offer=Offer(kind="percent_off", percent=20),
        call_to_action="Shop",
    )
    context = message_context(RICH, campaign_name="s", step=step, coupon="WBCODE", unsubscribe_url=UNSUBSCRIBE, now=NOW)
    sale = templates.render("spring.sale", context)
    assert sale.text.startswith("Hi Ana: WBCODE")
    assert sale.html.startswith("<h1>Ana María López</h1>") and f'href="{UNSUBSCRIBE}"' in sale.html


def test_an_unknown_template_is_an_error_not_an_empty_message() -> None:
    with pytest.raises(TemplateError, match="no template 'nope'"):
        TEMPLATES.render("nope", {})


def test_a_template_that_fails_while_rendering_is_an_error() -> None:
    templates = TEMPLATES.with_custom({"div": TemplateSource("x", "{{ order_count / 0 }}")})
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        templates.render("div", {"order_count": 3})
