"""A template cannot tie up a worker: loops, time, output and filter widths are bounded."""

import time

import pytest

from campaigns.prompts import engine
from campaigns.prompts.engine import TemplateProblem, compile_template, render_text

NESTED = (
    "{% for a in items %}{% for b in items %}{% for c in items %}{{ a }}{{ b }}{{ c }}"
    "{% endfor %}{% endfor %}{% endfor %}"
)


def test_it_stops_nested_loops_that_would_run_too_long(monkeypatch):
    monkeypatch.setattr(engine, "MAX_RENDER_S", 30.0)  # the pass count, not the clock, stops it
    started = time.monotonic()
    with pytest.raises(TemplateProblem, match="loops ran more than 5000 times"):
        render_text(compile_template(NESTED), {"items": list(range(200))})  # 8M passes
    assert time.monotonic() - started < 10  # stopped, not merely timed


def test_it_stops_a_render_whose_output_grows_too_large():
    template = compile_template("{% for a in items %}{{ text }}{% endfor %}")
    with pytest.raises(TemplateProblem, match="longer than 100000 characters"):
        render_text(template, {"items": range(1000), "text": "x" * 500})


def test_it_stops_a_render_past_its_time(monkeypatch):
    monkeypatch.setattr(engine, "MAX_RENDER_S", 0.0)
    template = compile_template("{% for a in items %}{{ a }}{% endfor %}")
    with pytest.raises(TemplateProblem, match="took longer than"):
        render_text(template, {"items": [1, 2]})


@pytest.mark.parametrize(
    "text",
    [
        '{{ x|ljust:"999999999" }}',
        '{{ x|center:"5000" }}',
        '{{ 1.5|floatformat:"100000000" }}',
        '{{ x|stringformat:"0100000000d" }}',
        '{{ x|wordwrap:"99999" }}',
    ],
)
def test_it_refuses_filter_widths_that_would_blow_up_memory(text):
    with pytest.raises(TemplateProblem, match="width or precision is over"):
        render_text(compile_template(text), {"x": 7})


def test_it_renders_ordinary_loops_and_filters_as_before():
    template = compile_template(
        '{% for a in items %}{{ a|ljust:"3" }}|{% endfor %} {{ 2.345|floatformat:2 }}'
    )
    assert render_text(template, {"items": ["a", "b"]}) == "a  |b  | 2.35\n"
    # The same compiled template renders again with a fresh budget.
    assert render_text(template, {"items": ["c"]}) == "c  | 2.35\n"
