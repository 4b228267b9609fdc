"""The status colours of the charts and badges stay apart for people with the common
colour-vision deficiencies: each palette of static/app.css (light and dark) is passed through
the Machado et al. (2009) simulation of protanopia, deuteranopia and tritanopia (colorspacious),
and every pair of colours must still differ by MIN_DISTANCE in CAM02-UCS (about ΔE 10 reads as
clearly different). The charts add a pattern per status too (checked here as well)."""
import itertools
import re

import numpy as np
import pytest
from colorspacious import cspace_convert

import policy
from helpers import ROOT

MIN_DISTANCE = 12.0
DEFICIENCIES = [None, "protanomaly", "deuteranomaly", "tritanomaly"]  # severity 100: the full -opias


def css():
    with open(f"{ROOT}/static/app.css", encoding="utf-8") as handle:
        return handle.read()


def variables(block):
    return {name: value for name, value in re.findall(r"--s-(\w+):\s*(#[0-9a-fA-F]{6})", block)}


def palettes():
    text = css()
    light = variables(text[text.index(":root {"):text.index("}", text.index(":root {"))])
    dark_start = text.index("@media (prefers-color-scheme: dark)")
    dark_root = text.index(":root {", dark_start)
    dark = {**light, **variables(text[dark_root:text.index("}", dark_root)])}
    return {"light": light, "dark": dark}


def rgb(hex_colour):
    return np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])


def closest_pair(colours, deficiency):
    points = {}
    for status, colour in colours.items():
        value = rgb(colour)
        if deficiency:
            value = np.clip(cspace_convert(value, {"name": "sRGB1+CVD", "cvd_type": deficiency, "severity": 100},
                                           "sRGB1"), 0, 1)
        points[status] = cspace_convert(value, "sRGB1", "CAM02-UCS")
    return min((float(np.linalg.norm(points[a] - points[b])), a, b) for a, b in itertools.combinations(points, 2))


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("deficiency", DEFICIENCIES)
def test_status_colours_stay_apart(scheme, deficiency):
    colours = palettes()[scheme]
    assert set(colours) == set(policy.STATUSES)
    distance, a, b = closest_pair(colours, deficiency)
    assert distance >= MIN_DISTANCE, f"{scheme}, {deficiency or 'normal vision'}: {a} and {b} differ by {distance:.1f}"


def test_the_check_can_fail():
    """Red and green, told apart with normal vision, merge for deuteranopes."""
    red_green = {"a": "#d62728", "b": "#2ca02c"}
    assert closest_pair(red_green, None)[0] >= MIN_DISTANCE
    assert closest_pair(red_green, "deuteranomaly")[0] < MIN_DISTANCE


def test_statuses_with_similar_colours_also_differ_in_pattern():
    text = css()
    patterned = {status for status in policy.STATUSES
                 if re.search(rf"\.bar-fill\.s-{status}, \.swatch\.s-{status} {{ background-image:", text)}
    # At most one status per lightness group may go without a pattern: pending and completed are plain.
    assert patterned == set(policy.STATUSES) - {"pending", "completed"}
