"""The Chat and Evaluate forms take their defaults, ranges and help from the config dataclasses
(GenerationConfig, EvalConfig), so a range changed there changes the sliders too."""
import gradio as gr
import pytest

from workbench.config.decoding import GenerationConfig
from workbench.config.tasks import EvalConfig
from workbench.ui.form import setting_input


@pytest.mark.parametrize("cls,name,step", [(GenerationConfig, "max_new_tokens", 1), (GenerationConfig, "top_k", 1),
                                           (GenerationConfig, "repetition_penalty", 0.05),
                                           (EvalConfig, "batch_size", 1), (EvalConfig, "max_new_tokens", 8)])
def test_bounded_numbers_are_sliders_with_the_field_range(cls, name, step):
    f = dict(cls.iter_fields())[name]
    slider = setting_input(cls, name, name, step=step)
    assert isinstance(slider, gr.Slider)
    assert (slider.minimum, slider.maximum, slider.value) == (f.metadata["min"], f.metadata["max"], f.default)
    assert slider.info == f.metadata["help"]


def test_an_exclusive_minimum_is_never_offered():
    # temperature and top_p must be > 0: the slider starts one step above 0 instead of offering 0
    for name in ("temperature", "top_p"):
        slider = setting_input(GenerationConfig, name, name, step=0.05)
        assert slider.minimum == pytest.approx(0.05) and slider.value == getattr(GenerationConfig(), name)


def test_bools_are_checkboxes_and_unbounded_numbers_are_whole_numbers():
    assert isinstance(setting_input(GenerationConfig, "do_sample", "Sampling"), gr.Checkbox)
    seed = setting_input(GenerationConfig, "seed", "Seed")
    assert isinstance(seed, gr.Number) and seed.precision == 0 and seed.value == GenerationConfig().seed
