"""Dataset recipes: read a public dataset in its native download layout, yield manifest records.

A recipe is a generator function registered by name::

    from desta.data.recipes import get_recipe
    for record in get_recipe("librispeech")("/data/LibriSpeech", split="dev-clean", limit=10):
        ...

Every recipe has the signature ``(root, *, split=None, limit=None, missing_audio="skip")``
(some add dataset-specific keyword options) and yields plain dicts built by
:func:`make_record`, whose keys are exactly the fields of the manifest's ``ClipRecord``:
``id, audio, dataset, domain, transcript, attributes, caption, segments, duration, meta``.

``attributes`` is an ordered dict of display names to display values, written the way the
paper's seed descriptions show them ("Gender: Female", "Audio category: door_wood_knock").

Recipe modules are imported lazily on the first registry lookup, so importing this package is
cheap and the modules can import the helpers defined here without a cycle.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from desta.errors import DestaError

__all__ = [
    "DOMAINS",
    "RECORD_KEYS",
    "DatasetError",
    "Recipe",
    "get_recipe",
    "list_recipes",
    "make_record",
    "normalise_gender",
    "register_recipe",
]


class DatasetError(DestaError):
    """A dataset on disk is missing, malformed, unsafe, or asked for with a bad option."""


DOMAINS = ("speech", "sound", "music")
RECORD_KEYS = (
    "id", "audio", "dataset", "domain", "transcript", "attributes", "caption", "segments",
    "duration", "meta",
)
MISSING_AUDIO_POLICIES = ("skip", "error")

# The modules that register the built-in recipes; imported on first registry use.
_BUILTIN_MODULES = (
    "librispeech", "libritts_r", "vctk", "crema_d", "common_voice", "iemocap", "esc50",
    "audiocaps", "clotho", "speech_commands", "nsynth", "gtzan",
    "fillets", "asterisk", "asterisk_prompts",
    "tuxpaint", "klettres", "ktuberling", "gcin",
    "gcompris", "soundfont", "zeroad",
)

Recipe = Callable[..., Iterator[dict[str, Any]]]
_REGISTRY: dict[str, Recipe] = {}
_builtins_loaded = False


def make_record(
    *,
    id: str,
    audio: Path,
    dataset: str,
    domain: str,
    transcript: str | None = None,
    attributes: dict[str, str] | None = None,
    caption: str | None = None,
    segments: list | None = None,
    duration: float | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build one manifest record: a dict with exactly the ``ClipRecord`` keys (RECORD_KEYS).

    ``meta`` is provenance that is never rendered into a seed description: ``speaker`` (the
    id train/held-out splits group by), ``language`` (ISO code), ``source`` (package),
    ``translation`` (English text), estimated labels, and so on.
    """
    if domain not in DOMAINS:
        raise DatasetError(f"record {id!r}: domain {domain!r} is not one of {DOMAINS}")
    return {
        "id": id,
        "audio": audio,
        "dataset": dataset,
        "domain": domain,
        "transcript": transcript,
        "attributes": dict(attributes or {}),
        "caption": caption,
        "segments": segments,
        "duration": duration,
        "meta": dict(meta or {}),
    }


_GENDERS = {
    "m": "Male", "male": "Male", "man": "Male", "male_masculine": "Male",
    "f": "Female", "female": "Female", "woman": "Female", "female_feminine": "Female",
}


def normalise_gender(value: str | None) -> str | None:
    """Map a dataset's gender label (M, male, male_masculine, ...) to "Male"/"Female".

    Returns None for an empty value or any other label; callers decide whether that is an error.
    """
    if value is None:
        return None
    return _GENDERS.get(value.strip().lower())


def register_recipe(name: str, *, splits: tuple[str, ...] = ()) -> Callable[[Recipe], Recipe]:
    """Register a recipe generator under `name`.

    `splits` lists the split names the dataset defines (empty: it has none, so only
    ``split=None`` is accepted). The registered callable checks `root`, `split`, `limit` and
    `missing_audio` when it is called (not on first iteration), then streams the generator's
    records, stopping after `limit` of them.
    """

    def decorate(fn: Recipe) -> Recipe:
        if name in _REGISTRY:
            raise DatasetError(f"a dataset recipe named {name!r} is already registered")

        @functools.wraps(fn)
        def recipe(
            root: str | Path,
            *,
            split: str | None = None,
            limit: int | None = None,
            missing_audio: str = "skip",
            **options: Any,
        ) -> Iterator[dict[str, Any]]:
            root = Path(root).expanduser()
            if not root.is_dir():
                raise DatasetError(
                    f"{name}: data root {str(root)!r} is not a directory; pass the folder the "
                    f"dataset was extracted to"
                )
            if split is not None and split not in splits:
                known = ", ".join(splits) if splits else "none (pass split=None)"
                raise DatasetError(f"{name}: unknown split {split!r}; known splits: {known}")
            if limit is not None and (not isinstance(limit, int) or limit < 0):
                raise DatasetError(f"{name}: limit must be a non-negative integer, got {limit!r}")
            if missing_audio not in MISSING_AUDIO_POLICIES:
                raise DatasetError(
                    f"{name}: missing_audio must be one of {MISSING_AUDIO_POLICIES}, "
                    f"got {missing_audio!r}"
                )
            try:
                inspect.signature(fn).bind(root, split=split, missing_audio=missing_audio,
                                           **options)
            except TypeError as exc:
                raise DatasetError(f"{name}: bad recipe option: {exc}") from None
            records = fn(root.absolute(), split=split, missing_audio=missing_audio, **options)
            return _take(records, limit, root.absolute())

        # Show the callable's real signature (the generator's, plus `limit`) in help().
        params = list(inspect.signature(fn).parameters.values())
        limit_param = inspect.Parameter("limit", inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation="int | None")
        recipe.__signature__ = inspect.signature(fn).replace(  # type: ignore[attr-defined]
            parameters=[*params[:2], limit_param, *params[2:]])
        recipe.recipe_name = name  # type: ignore[attr-defined]
        recipe.splits = splits  # type: ignore[attr-defined]
        _REGISTRY[name] = recipe
        return recipe

    return decorate


def _take(records: Iterator[dict[str, Any]], limit: int | None, root: Path
          ) -> Iterator[dict[str, Any]]:
    """Yield at most `limit` records, then close the source so its summary logging runs now.
    The recipe's own code runs with `root` as its data root (`paths.recipe_root`), so every
    metadata file it opens is checked to lie inside it."""
    from desta.data.recipes.paths import recipe_root

    try:
        count = 0
        while limit is None or count < limit:
            with recipe_root(root):  # not around the yield: the caller's code runs outside
                record = next(records, None)
            if record is None:
                return
            count += 1
            yield record
    finally:
        with recipe_root(root):
            records.close()  # type: ignore[attr-defined]


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(f"{__name__}.{module}")


def list_recipes() -> list[str]:
    """Names of all registered recipes, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_recipe(name: str) -> Recipe:
    """The recipe registered as `name`; a DatasetError listing the known names otherwise."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DatasetError(
            f"unknown dataset recipe {name!r}; known recipes: {', '.join(sorted(_REGISTRY))}"
        ) from None
