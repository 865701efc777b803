"""Fish Fillets NG: acted game dialogue in Czech and Dutch (Debian fillets-ng-data{,-cs,-nl}).

Layout (a ``dpkg -x`` tree, or an installed system with ``root=/``)::

    usr/share/games/fillets-ng/script/<level>/dialogs_<lang>.lua    also demo_dialogs_, brief_
    usr/share/games/fillets-ng/script/share/<kind>_dialogs_<lang>.lua    border_, bore_, ...
    usr/share/games/fillets-ng/sound/<level>/<lang>/<clip id>.ogg
    usr/share/games/fillets-ng/sound/share/<folder>/<lang>/<clip id>.ogg

A dialogue file is Lua::

    dialogId("let-m-divna", "font_small", "What kind of strange ship is that?")
    dialogStr("Co je to za divnou loď?")

``dialogId(clip id, font, English line)`` opens a line; the font names the speaker
(``font_small`` the small fish, ``font_big`` the big fish, ``font_parrot``...);
``dialogStr(text)`` gives the line in the file's language. The files are read with a
tokenizer for the Lua subset they use (no Lua runtime): both quote styles with Lua 5.1
escapes, long brackets, comments, ``..`` concatenation of literals. A call whose arguments
are not literals (``dialogId("key"..i, "", "")`` inside a ``for`` loop) is skipped, counted.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from desta.data.recipes import DatasetError, make_record, register_recipe
from desta.data.recipes.languages import LANGUAGE_NAMES
from desta.data.recipes.metadata import AudioCheck, malformed
from desta.data.recipes.paths import list_dir, require_dir, require_file, resolve_under

logger = logging.getLogger(__name__)

GAME_DIR = "usr/share/games/fillets-ng"
LANGUAGES = {code: LANGUAGE_NAMES[code] for code in ("cs", "nl")}
PACKAGES = {"cs": "fillets-ng-data-cs", "nl": "fillets-ng-data-nl"}

# script/share/<kind>_dialogs_<lang>.lua -> sound/share/<folder>/: the soundPrefix of the
# dialogLoad() calls in script/share/*.lua (level files use sound/<level>/, the default).
SHARE_SOUNDS = {"black_": "blackjokes", "bore_": "borejokes", "border_": "border",
                "shout_": "border", "intro_": "intro"}

# The speaking fonts that name one character everywhere. Colour fonts (font_white,
# font_cyan, ...) are reused for different characters in different levels, so those
# speakers are qualified by the level.
CHARACTERS = {"font_small": "small_fish", "font_big": "big_fish", "font_both": "both_fish"}
_COLOUR_FONTS = {"font_white", "font_lightgrey", "font_darkgrey", "font_cyan", "font_yellow",
                 "font_orange", "font_green", "font_magenta", "font_brown"}

# Gender is not in any credits, manual or copyright file of the package. It is read from the
# grammar of each character's own Czech lines: past-tense forms next to a first-person
# auxiliary ("byla jsem" / "byl jsem", "řekla bych" / "řekl bych", "jsem ráda" / "jsem rád").
# A character gets a Gender only with at least GENDER_MIN_FORMS such forms, all of one gender.
GENDER_MIN_FORMS = 3
_WORD = re.compile(r"[^\W\d_]+")
_FIRST_PERSON = {"jsem", "bych", "abych", "kdybych"}
# Short words that may stand between the auxiliary and the participle ("jsem si myslela").
_CLITICS = {"se", "si", "ti", "mu", "mi", "to", "tu", "už", "ho", "ji", "je", "tě", "vám",
            "vás", "tam", "taky", "také", "ani"}


# --- a tokenizer for the Lua subset the dialogue files use ----------------------------------


class LuaToken(NamedTuple):
    kind: str  # "string", "name", "number" or "op"
    value: str
    line: int


_SPACE = re.compile(r"[ \t\r\f\v]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_LONG_OPEN = re.compile(r"\[(=*)\[")
_OPS = ("...", "..", "==", "~=", "<=", ">=")
_OP_CHARS = set("+-*/%^#<>=(){}[];:,.")
# Lua 5.1 (the game's interpreter) escapes; any other escaped character stands for itself,
# as 5.1 reads it (the Dutch files write "\/etc").
_ESCAPES = {"a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t",
            "v": b"\v", "\\": b"\\", '"': b'"', "'": b"'", "\n": b"\n"}


def lua_tokens(text: str, path: Path) -> Iterator[LuaToken]:
    """Tokens of a Lua source text, comments and whitespace dropped.

    Strings are decoded (escapes applied, bytes read as UTF-8). An unfinished string or long
    bracket, a bad escape or an unexpected character is a DatasetError naming ``path:line``.
    """
    pos, line, end = 0, 1, len(text)
    while pos < end:
        char = text[pos]
        if char == "\n":
            line += 1
            pos += 1
        elif (match := _SPACE.match(text, pos)) is not None:
            pos = match.end()
        elif text.startswith("--", pos):
            long = _LONG_OPEN.match(text, pos + 2)
            if long is not None:
                _, pos, line = _long_bracket(text, pos + 2, long, line, path, "comment")
            else:
                newline = text.find("\n", pos)
                pos = end if newline < 0 else newline
        elif char in "\"'":
            start = line
            value, pos, line = _short_string(text, pos, line, path)
            yield LuaToken("string", value, start)
        elif char == "[" and (long := _LONG_OPEN.match(text, pos)) is not None:
            start = line
            value, pos, line = _long_bracket(text, pos, long, line, path, "string")
            yield LuaToken("string", value, start)
        elif (match := _NAME.match(text, pos)) is not None:
            yield LuaToken("name", match.group(), line)
            pos = match.end()
        elif (match := _NUMBER.match(text, pos)) is not None:
            yield LuaToken("number", match.group(), line)
            pos = match.end()
        else:
            op = next((op for op in _OPS if text.startswith(op, pos)), None)
            if op is None and char in _OP_CHARS:
                op = char
            if op is None:
                raise malformed(path, line, f"unexpected character {char!r} in Lua source")
            yield LuaToken("op", op, line)
            pos += len(op)


def _short_string(text: str, pos: int, line: int, path: Path) -> tuple[str, int, int]:
    """Decode the quoted string starting at `pos`: (value, position after it, line after it).

    A raw newline ends a short string in Lua (an error); an escaped one is part of it.
    """
    quote, start_line = text[pos], line
    out = bytearray()
    begin = pos
    pos += 1
    while True:
        if pos >= len(text) or text[pos] == "\n":
            raise malformed(path, start_line, f"unfinished string {text[begin:pos][:40]!r}")
        char = text[pos]
        if char == quote:
            break
        if char != "\\":
            out += char.encode("utf-8")
            pos += 1
            continue
        escape = text[pos + 1: pos + 2]
        if not escape:
            raise malformed(path, line, "string ends in a lone backslash")
        if escape.isdigit():
            digits = re.match(r"\d{1,3}", text[pos + 1:]).group()  # type: ignore[union-attr]
            if int(digits) > 255:
                raise malformed(path, line, f"escape \\{digits} is larger than 255")
            out.append(int(digits))
            pos += 1 + len(digits)
            continue
        if escape == "\n":
            line += 1
        out += _ESCAPES.get(escape, escape.encode("utf-8"))
        pos += 2
    try:
        value = out.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed(path, start_line, "string escapes do not decode as UTF-8") from None
    return value, pos + 1, line


def _long_bracket(text: str, pos: int, opening: re.Match[str], line: int, path: Path,
                  what: str) -> tuple[str, int, int]:
    """A ``[==[ ... ]==]`` string or comment body: (value, position after it, line after it)."""
    close = "]" + opening.group(1) + "]"
    body_start = opening.end()
    stop = text.find(close, body_start)
    if stop < 0:
        raise malformed(path, line, f"long-bracket {what} {opening.group()!r} is never closed "
                                    f"with {close!r}")
    value = text[body_start:stop]
    line += value.count("\n")
    if value.startswith("\r\n"):  # Lua drops a newline right after the opening bracket
        value = value[2:]
    elif value.startswith("\n"):
        value = value[1:]
    return value, stop + len(close), line


# --- dialogue calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DialogLine:
    """One ``dialogId`` of a dialogue file, with the ``dialogStr`` text that follows it."""

    clip: str  # the clip id, also the .ogg file name
    font: str
    english: str  # the dialogId's default (English) subtitle
    text: str | None  # the dialogStr text; None when the file gives none
    line: int  # line of the dialogId call


@dataclass
class DialogFile:
    """The literal dialogue lines of one file, and how many calls were not literals."""

    lines: dict[str, DialogLine]
    dynamic_calls: int = 0


def _call_args(tokens: list[LuaToken], start: int, path: Path
               ) -> tuple[list[str | None], int]:
    """Arguments of the call whose ``(`` is at ``tokens[start]``: each a string when it is a
    literal (or a ``..`` chain of literals), else None; and the index after the ``)``."""
    args: list[list[LuaToken]] = [[]]
    depth, index = 0, start + 1
    while index < len(tokens):
        token = tokens[index]
        if token.kind == "op" and token.value in "({[":
            depth += 1
        elif token.kind == "op" and token.value in ")}]":
            if depth == 0 and token.value == ")":
                break
            depth -= 1
        if depth == 0 and token.kind == "op" and token.value == ",":
            args.append([])
        else:
            args[-1].append(token)
        index += 1
    else:
        raise malformed(path, tokens[start].line, "call is never closed with ')'")
    if args == [[]]:
        return [], index + 1
    return [_literal(arg) for arg in args], index + 1


def _literal(tokens: list[LuaToken]) -> str | None:
    """``"a" .. "b"`` -> "ab"; None when the expression is anything but literal strings."""
    if not tokens or len(tokens) % 2 == 0:
        return None
    parts = tokens[0::2]
    joins = tokens[1::2]
    if any(t.kind != "string" for t in parts) or any(t.value != ".." for t in joins):
        return None
    return "".join(t.value for t in parts)


def parse_dialogs(path: Path) -> DialogFile:
    """The ``dialogId``/``dialogStr`` lines of a Fish Fillets dialogue file, keyed by clip id.

    A ``dialogId`` takes 3 arguments and a ``dialogStr`` 1; other counts, or a ``dialogStr``
    before any ``dialogId``, are a DatasetError naming ``path:line``. A clip id defined twice
    keeps its first definition, and a ``dialogId`` its first ``dialogStr``.
    """
    require_file(path, "fillets", "dialogue file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not valid UTF-8 text ({exc.reason})") from None
    tokens = list(lua_tokens(text, path))
    result = DialogFile(lines={})
    current: list[Any] | None = None  # [clip, font, english, text, line] of the open dialogId
    dynamic = False  # the open dialogId was not a literal call
    seen_id = False

    def close() -> None:
        if current is not None and current[0] not in result.lines:
            result.lines[current[0]] = DialogLine(*current)

    index = 0
    while index < len(tokens):
        token = tokens[index]
        is_call = (token.kind == "name" and token.value in ("dialogId", "dialogStr")
                   and index + 1 < len(tokens) and tokens[index + 1].value == "("
                   and tokens[index + 1].kind == "op"
                   and not (index and tokens[index - 1].value in (".", ":", "function")))
        if not is_call:
            index += 1
            continue
        args, index = _call_args(tokens, index + 1, path)
        if token.value == "dialogId":
            if len(args) != 3:
                raise malformed(path, token.line, f"dialogId takes (clip id, font, English "
                                                  f"line), got {len(args)} argument(s)")
            close()
            seen_id = True
            if any(arg is None for arg in args):
                result.dynamic_calls += 1
                current, dynamic = None, True
                continue
            current, dynamic = [args[0], args[1], args[2], None, token.line], False
        else:
            if len(args) != 1:
                raise malformed(path, token.line,
                                f"dialogStr takes one string, got {len(args)} argument(s)")
            if not seen_id:
                raise malformed(path, token.line, "dialogStr before any dialogId")
            if dynamic or args[0] is None:
                result.dynamic_calls += 1
                continue
            if current is not None and current[3] is None:
                current[3] = args[0]
    close()
    return result


# --- which dialogue files feed which sound folder -----------------------------------------------


_DIALOG_FILE = re.compile(r"^(?P<prefix>(?:[a-z]+_)?)dialogs_(?P<lang>[a-z]{2}(?:_[A-Z]{2})?)"
                          r"\.lua$")


def dialog_sources(game: Path, lang: str) -> dict[Path, list[Path]]:
    """Sound folder (``sound/<level>/<lang>``) -> the dialogue files (``<lang>``) defining its
    clips, following the game's dialogLoad() prefixes."""
    script = require_dir(game / "script", "fillets", "game scripts script/")
    sources: dict[Path, list[Path]] = {}
    for level in list_dir(script, dirs=True):
        for entry in list_dir(Path(level.path), dirs=False, suffixes=(".lua",)):
            match = _DIALOG_FILE.match(entry.name)
            if match is None or match["lang"] != lang:
                continue
            if level.name == "share":
                folder = SHARE_SOUNDS.get(match["prefix"])
                if folder is None:
                    logger.warning("fillets: %s: no known sound folder for prefix %r; skipped",
                                   entry.path, match["prefix"])
                    continue
                sound = resolve_under(game, "sound", "share", folder, lang)
            else:
                sound = resolve_under(game, "sound", level.name, lang)
            sources.setdefault(sound, []).append(Path(entry.path))
    return sources


def _english_lines(files: list[Path], lang: str, parsed: _Parsed) -> dict[str, str]:
    """Clip id -> English line, from the ``dialogs_en.lua`` beside each `lang` file."""
    english: dict[str, str] = {}
    for path in files:
        en_path = path.with_name(path.name.replace(f"dialogs_{lang}.lua", "dialogs_en.lua"))
        if en_path.is_file():
            for clip, line in parsed(en_path).lines.items():
                english.setdefault(clip, line.english)
    return english


def speaker_of(font: str, level: str) -> str | None:
    """The character a font speaks for; None for the empty font (sound effects, unnamed)."""
    if not font:
        return None
    if font in CHARACTERS:
        return CHARACTERS[font]
    name = font.removeprefix("font_")
    return f"{level}_{name}" if font in _COLOUR_FONTS else name


def first_person_forms(text: str) -> tuple[list[str], list[str]]:
    """The feminine and masculine first-person forms of a Czech line: l-participles and
    ``rád``/``sám`` next to ``jsem``/``bych`` ("Myslela jsem", "jsem si myslel")."""
    words = [word.lower() for word in _WORD.findall(text)]
    feminine: list[str] = []
    masculine: list[str] = []
    for index, word in enumerate(words):
        if word not in _FIRST_PERSON:
            continue
        after = index + 1
        while after < len(words) and words[after] in _CLITICS and after < index + 3:
            after += 1
        neighbours = words[index - 1:index] + words[after:after + 1]
        for form in neighbours:
            if form in _FIRST_PERSON or form in _CLITICS:
                continue
            if form in ("ráda", "sama") or (len(form) >= 4 and form.endswith("la")):
                feminine.append(form)
            elif form in ("rád", "sám") or (len(form) >= 3 and form.endswith("l")):
                masculine.append(form)
    return feminine, masculine


def character_genders(game: Path, parsed: _Parsed | None = None) -> dict[str, tuple[str, str]]:
    """Character -> (Gender, where it comes from), from the grammar of the character's own
    Czech lines in every ``dialogs_cs.lua`` (see :func:`first_person_forms`).

    Characters with fewer than GENDER_MIN_FORMS forms, or forms of both genders, are left
    out. The counts are part of the returned note, so a record says how strong it is.
    """
    parsed = parsed or _Parsed()
    forms: dict[str, tuple[Counter[str], Counter[str]]] = {}
    for sound_dir, files in sorted(dialog_sources(game, "cs").items()):
        level = _level_of(game, sound_dir)
        for path in files:
            for line in parsed(path).lines.values():
                character = speaker_of(line.font, level)
                if character is None or not line.text:
                    continue
                feminine, masculine = first_person_forms(line.text)
                counts = forms.setdefault(character, (Counter(), Counter()))
                counts[0].update(feminine)
                counts[1].update(masculine)
    genders: dict[str, tuple[str, str]] = {}
    for character, (feminine, masculine) in forms.items():
        n_fem, n_masc = sum(feminine.values()), sum(masculine.values())
        if n_fem and n_masc:
            continue
        if max(n_fem, n_masc) < GENDER_MIN_FORMS:
            continue
        gender, counts = ("Female", feminine) if n_fem else ("Male", masculine)
        examples = ", ".join(f"{form!r}" for form, _ in counts.most_common(3))
        genders[character] = (gender, (
            f"grammatical gender of the character's own Czech lines (dialogs_cs.lua): "
            f"{n_fem} feminine and {n_masc} masculine first-person past-tense forms, "
            f"e.g. {examples}"))
    return genders


class _Parsed:
    """Parses each dialogue file once per recipe run (the cs files serve gender and text)."""

    def __init__(self) -> None:
        self._files: dict[Path, DialogFile] = {}

    def __call__(self, path: Path) -> DialogFile:
        if path not in self._files:
            self._files[path] = parse_dialogs(path)
        return self._files[path]


def _level_of(game: Path, sound_dir: Path) -> str:
    """``sound/<level>/<lang>`` -> level; ``sound/share/<folder>/<lang>`` -> "share"."""
    folder = sound_dir.parent.relative_to(game / "sound").parts
    return folder[0]


@register_recipe("fillets")
def fillets(root: Path, *, split: str | None = None, missing_audio: str = "skip",
            languages: tuple[str, ...] | str = tuple(LANGUAGES)) -> Iterator[dict[str, Any]]:
    """Fish Fillets NG voice clips (``cs``, ``nl``): transcript = the line in the clip's
    language, attributes Language and Gender (only for characters whose own Czech lines show
    it: :func:`character_genders`), meta speaker ``fillets:<lang>:<character>``, translation
    (the English line).

    A clip is read when its id has a ``dialogId`` with a speaking font; clips with no line, or
    whose font is empty (sound effects, unlabelled counts), are skipped and counted.
    """
    if isinstance(languages, str):  # from the CLI: --option languages=cs,nl
        languages = tuple(lang.strip() for lang in languages.split(",") if lang.strip())
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise DatasetError(f"fillets: unknown language(s) {unknown}; known: "
                           f"{', '.join(LANGUAGES)}")
    game = require_dir(resolve_under(root, GAME_DIR), "fillets",
                       "Fish Fillets data (package fillets-ng-data)")
    parsed = _Parsed()
    genders = character_genders(game, parsed)
    check = AudioCheck("fillets", missing_audio)
    skipped: Counter[str] = Counter()
    try:
        for lang in languages:
            sources = dialog_sources(game, lang)
            if not sources:
                raise DatasetError(f"fillets: no script/*/dialogs_{lang}.lua under {game}; is "
                                   f"fillets-ng-data unpacked there?")
            for sound_dir, files in sorted(sources.items()):
                yield from _folder_records(root, game, lang, sound_dir, files, parsed, genders,
                                           check, skipped)
        check.finish()
    finally:
        check.report()
        if skipped:
            logger.info("fillets: skipped %s", ", ".join(f"{n} {why}" for why, n in
                                                         sorted(skipped.items())))


def _folder_records(root: Path, game: Path, lang: str, sound_dir: Path, files: list[Path],
                    parsed: _Parsed, genders: dict[str, tuple[str, str]], check: AudioCheck,
                    skipped: Counter[str]) -> Iterator[dict[str, Any]]:
    """Records of the clips in one ``sound/.../<lang>`` folder."""
    if not sound_dir.is_dir():
        return  # a level with no speech in this language
    lines: dict[str, DialogLine] = {}
    where: dict[str, Path] = {}
    for path in files:
        dialogs = parsed(path)
        if dialogs.dynamic_calls:
            skipped[f"{lang} non-literal dialogue call(s)"] += dialogs.dynamic_calls
        for clip, line in dialogs.lines.items():
            if clip not in lines:
                lines[clip], where[clip] = line, path
    english = _english_lines(files, lang, parsed)
    folder = sound_dir.parent.relative_to(game / "sound").as_posix()
    level = _level_of(game, sound_dir)
    for entry in list_dir(sound_dir, dirs=False, suffixes=(".ogg",)):
        clip = entry.name[:-4]
        line = lines.get(clip)
        if line is None:
            skipped[f"{lang} clip(s) with no dialogue line"] += 1
            continue
        character = speaker_of(line.font, level)
        if character is None:
            skipped[f"{lang} clip(s) with no speaker font (sound effects, unlabelled)"] += 1
            continue
        audio = resolve_under(root, GAME_DIR, "sound", folder, lang, entry.name)
        if not check.exists(audio, f"listing of {sound_dir}"):
            continue  # a dangling symlink
        attributes = {"Language": LANGUAGES[lang]}
        meta: dict[str, Any] = {
            "speaker": f"fillets:{lang}:{character}", "language": lang, "character": character,
            "font": line.font, "level": level, "source": PACKAGES[lang],
            "line": f"{where[clip].relative_to(root).as_posix()}:{line.line}",
        }
        if character in genders:
            attributes["Gender"], meta["gender_source"] = genders[character]
            if lang != "cs":
                meta["gender_source"] += f"; the {LANGUAGES[lang]} clip voices the same character"
        translation = english.get(clip) or line.english
        if translation:
            meta["translation"] = translation
        transcript = line.text.strip() if line.text else None
        yield make_record(id=f"fillets/{lang}/{folder}/{clip}", audio=audio, dataset="fillets",
                          domain="speech", transcript=transcript or None,
                          attributes=attributes, meta=meta)
