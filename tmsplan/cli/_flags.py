"""Library messages in command-line terms: Python parameter names become flags."""

from __future__ import annotations

import re
import sys

from tmsplan.errors import TmsplanWarning


def print_warnings(caught: list) -> None:
    """Print tmsplan's own warnings once each, one line each (library warnings stay quiet)."""
    seen = set()
    for item in caught:
        text = flag_message(str(item.message))
        if issubclass(item.category, TmsplanWarning) and text not in seen:
            seen.add(text)
            print(f"tmsplan: warning: {text}", file=sys.stderr)


_FLAGS = {
    # Python parameter of the library -> its command-line flag, for error lines
    "coil_skin_distance_mm": "--coil-skin-distance",
    "handle_angle_deg": "--handle-angle",
    "max_depth_mm": "--max-depth",
    "target_mni": "--target-mni",
    "target_t1": "--target-t1",
    "roi_mask": "--roi-mask",
    "mni_to_t1": "--mni-to-t1",
    "xfm_kind": "--xfm-kind",
    "xfm_moving": "--xfm-moving",
    "activation_space": "--activation-space",
    "target_name": "--target-name",
    "t1": "--t1",
    "peaks_threshold": "--peaks-threshold",
}
# plain words that are parameters only as "word=value", "word:" or "word must" at the start
_WORD_FLAGS = {
    "activation": "--activation",
    "threshold": "--threshold",
    "sign": "--sign",
    "rule": "--rule",
    "register": "--register",
    "formats": "--formats",
    "overwrite": "--force",
}
_PARAMETER = re.compile(
    r"(?<![\w.\-'/])(?P<name>[a-z][a-z0-9_]*)"  # a word, not inside a path or name
    r"(?:=(?P<quote>'?)(?P<value>[\w\-]+(?:\.[\w\-]+)*)(?P=quote))?"  # =value, ='value'
    r"(?![\w\-/']|\.\w)"
)


def flag_message(text: str) -> str:
    """A library message with its Python parameter names turned into command-line flags.

    ``max_depth_mm must be ...`` -> ``--max-depth must be ...``;
    ``activation_space='T1w'`` -> ``--activation-space T1w``; ``register=True`` ->
    ``--register``. Plain words (``threshold``) count as parameters only with a value
    (``threshold=3``) or as the message's subject (``threshold must ...``, ``activation: ...``).
    """

    def flag(match: re.Match) -> str:
        name, value = match["name"], match["value"]
        subject = match.start() == 0 and re.match(r"(:| must\b)", text[match.end() :])
        option = _FLAGS.get(name) or (
            _WORD_FLAGS.get(name) if (value is not None or subject) else None
        )
        if option is None:
            return match.group(0)
        if value is None or value == "True":
            return option
        return f"{option} {value}"

    return _PARAMETER.sub(flag, text)
