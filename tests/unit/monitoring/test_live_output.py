"""The dashboards' ``live_output``: the first drawing is stored as the Output widget's outputs
(no ``with out:`` capture for Voila's nbclient to answer on the shell channel), later control
changes draw again with the new values."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture()
def shell():
    """An initialised IPython shell (``display`` publishes through it), removed afterwards."""
    from IPython.core.interactiveshell import InteractiveShell

    hooks = sys.displayhook, sys.excepthook
    yield InteractiveShell.instance(history_length=0)
    InteractiveShell.clear_instance()
    sys.displayhook, sys.excepthook = hooks


def test_first_drawing_is_the_widgets_outputs_and_a_control_change_draws_again(shell, capsys) -> None:
    import ipywidgets
    from IPython.display import Markdown, display

    from churn.monitoring.dashboard import live_output

    calls = []

    def draw(x: int, name: str) -> None:
        calls.append((x, name))
        print(f"drawn {x}")
        display(Markdown(f"**{name} {x}**"))

    slider = ipywidgets.IntSlider(value=3)
    picker = ipywidgets.Dropdown(options=["p", "q"], value="p")
    out = live_output(draw, {"x": slider, "name": picker})

    assert calls == [(3, "p")]
    assert out.outputs == (
        {"output_type": "stream", "name": "stdout", "text": "drawn 3\n"},
        {"output_type": "display_data", "data": {"text/plain": "<IPython.core.display.Markdown object>",
                                                  "text/markdown": "**p 3**"}, "metadata": {}},
    )  # fmt: skip
    assert out.msg_id == ""  # nothing was displayed through `with out:`
    slider.value = 5
    picker.value = "q"
    slider.description = "not a value"  # only a value change draws
    assert calls == [(3, "p"), (5, "p"), (5, "q")]


def test_an_error_in_the_first_drawing_is_raised(shell) -> None:
    import ipywidgets

    from churn.monitoring.dashboard import live_output

    def draw(x: int) -> None:
        raise ValueError(f"no data for {x}")

    with pytest.raises(ValueError, match="no data for 1"):
        live_output(draw, {"x": ipywidgets.IntSlider(value=1)})
