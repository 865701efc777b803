"""Tiny copies of three real-audio Debian sources in their exact ``dpkg -x`` layouts: Fish
Fillets NG (Lua dialogue tables + OGG Vorbis clips), Asterisk core sounds (G.722 clips +
gzipped core-sounds text files) and the Asterisk community prompt sets (8 kHz WAV, raw GSM).

The metadata files copy the syntax of the real ones, including the oddities met there
(escaped quotes, ``\\/``, a ``for`` loop of computed ids, a UTF-8 BOM, a name given twice,
an entry run into another line, bracketed tones, a zero-byte clip). The audio is real audio
in each source's own codec: OGG Vorbis and WAV/raw GSM 6.10 by soundfile, G.722 by PyAV.
Nothing here knows what the recipes produce; the tests state it.
"""

from __future__ import annotations

import gzip
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from recipe_fixtures import write_text, write_tone

GAME = "usr/share/games/fillets-ng"
SOUNDS = "usr/share/asterisk/sounds"
DOC = "usr/share/doc"


# --- Fish Fillets ----------------------------------------------------------------------------

FILLETS_EN = '''
dialogId("let-m-divna", "font_small", "What kind of strange ship is that?")

dialogId("let-v-vrak0", "font_big", "This is the wreck of the civilian airplane.")
dialogId("let-m-citat", "font_small", "He said \\"Hello\\" to C:\\\\WINDOWS.")
dialogId("let-m-myslela", "font_small", "I thought so.")
dialogId("let-m-videla", "font_small", "I have seen it.")
dialogId("let-v-rekl", "font_big", "I would say so.")
dialogId("let-v-myslel", "font_big",
"I thought it was a stone.")
dialogId("let-x-papousek", "font_parrot", "I always wanted a ship.")
dialogId("let-x-bily", "font_white", "I was tired, I was happy.")
dialogId("let-x-zvuk", "", "")
dialogId("let-m-bezprekladu", "font_small", "No Czech line for this one.")
'''

# Every construct of the Lua subset: comments (line and long, one hiding a fake call),
# both quote styles, escapes (\", \\, \/, decimal UTF-8 bytes), long brackets, `..`,
# a call split over lines, a loop of computed ids, a dialogId without dialogStr.
FILLETS_CS = '''
-- FIXME. spell
dialogId("let-m-divna", "font_small", "What kind of strange ship is that?")
dialogStr("Co je to za divnou lo\\196\\143?")

--[[ an old draft:
dialogId("let-m-stare", "font_small", "old")
dialogStr("staré")
]]
dialogId("let-v-vrak0", "font_big", "This is the wreck of the civilian airplane.")
dialogStr('To je vrak ' .. "dopravního " .. [[letadla.]])

dialogId("let-m-citat", "font_small", "He said \\"Hello\\" to C:\\\\WINDOWS.")
dialogStr("Řekl \\"Ahoj\\" adresáři C:\\\\WINDOWS a \\/etc.")
dialogId("let-m-myslela", "font_small", "I thought so.")
dialogStr("Myslela jsem si to. Jsem ráda.")
dialogId("let-m-videla", "font_small", "I have seen it.")
dialogStr([==[Viděla jsem to.]==])
dialogId("let-v-rekl", "font_big", "I would say so.")
dialogStr("Řekl bych, že ano. Myslel jsem to.")
dialogId("let-v-myslel", "font_big",
"I thought it was a stone.")
dialogStr(
"Jsem si myslel, že je to kámen.")
dialogId("let-x-papousek", "font_parrot", "I always wanted a ship.")
dialogStr("Vždycky jsem chtěl loď.")
dialogId("let-x-bily", "font_white", "I was tired, I was happy.")
dialogStr("Byla jsem unavená, byla jsem ráda, byl jsem rád.")
dialogId("let-x-zvuk", "", "")
dialogStr("")
dialogId("let-m-bezprekladu", "font_small", "No Czech line for this one.")
local i
for i = 0, 2 do dialogId("key"..i, "", "") end
'''

FILLETS_NL = '''
dialogId("let-m-divna", "font_small", "What kind of strange ship is that?")
dialogStr("Wat is dat voor een raar schip?")
dialogId("let-v-vrak0", "font_big", "This is the wreck of the civilian airplane.")
dialogStr("Dit is het wrak van een passagiersvliegtuig.")
'''

FILLETS_BORDER_EN = '''
dialogId("hr-m-ven", "font_small", "Let us get out.")
'''
FILLETS_BORDER_CS = '''
dialogId("hr-m-ven", "font_small", "Let us get out.")
dialogStr("Pojďme ven.")
'''


def build_fillets(base: Path) -> Path:
    """The three fillets-ng-data packages unpacked at `base`; returns `base` (the root)."""
    game = base / GAME
    script = game / "script"
    write_text(script / "airplane" / "dialogs.lua",
               '\ndialogLoad("script/"..codename.."/")\n')
    write_text(script / "airplane" / "code.lua", "-- level code, not dialogue\nlocal x = 1\n")
    write_text(script / "airplane" / "dialogs_en.lua", FILLETS_EN)
    write_text(script / "airplane" / "dialogs_cs.lua", FILLETS_CS)
    write_text(script / "airplane" / "dialogs_nl.lua", FILLETS_NL)
    write_text(script / "share" / "border_dialogs_en.lua", FILLETS_BORDER_EN)
    write_text(script / "share" / "border_dialogs_cs.lua", FILLETS_BORDER_CS)
    cs_clips = ("let-m-divna", "let-v-vrak0", "let-m-citat", "let-m-myslela", "let-v-rekl",
                "let-v-myslel", "let-x-papousek", "let-x-bily", "let-x-zvuk",
                "let-m-bezprekladu", "let-m-navic")  # navic: a clip no line names
    for clip in cs_clips:
        write_tone(game / "sound" / "airplane" / "cs" / f"{clip}.ogg", sample_rate=22_050)
    for clip in ("let-m-divna", "let-v-vrak0"):
        write_tone(game / "sound" / "airplane" / "nl" / f"{clip}.ogg", sample_rate=22_050)
    write_tone(game / "sound" / "airplane" / "en" / "let-x-zvuk.ogg", sample_rate=22_050)
    write_tone(game / "sound" / "share" / "border" / "cs" / "hr-m-ven.ogg", sample_rate=22_050)
    write_tone(game / "sound" / "share" / "sp-bubles_00.ogg", sample_rate=22_050)
    return base


# --- Asterisk core sounds --------------------------------------------------------------------

CORE_EN = '''; Core Asterisk Sounds in English

beep: [this is a simple beep tone]
digits/1: one
letters/at: at [@]
letters/ascii123: left brace
silence/1: (1 second of silence)
spy-iax2: IAX (note: does not say "2")
vm-goodbye: Goodbye.
vm-then-pound: then press pound.
conf-adminmenu: Please press 1 to mute or unmute yourself.
'''

CORE_ES = '''\ufeff; Core Asterisk Sounds in Spanish
digits/0: cero
digits/0: diez
digits/1f: una
vm-goodbye: Adiós.
vm-tempgreetactive: Sus saludos [temporales] estan actualmente en uso
dir-welcome:
conf-adminmenu: conf-adminmenu: Presione 1 para silenciar su micrófono.
vm-record-prepend: Al tono, grabe una introducción.vm-then-pound: luego marque numeral.
'''

CORE_IT = '''; Core Asterisk Sounds in Italian
beep: un suono beep
digits/1: uno
vm-goodbye: Arrivederci.
vm-then-pound: poi premere cancelletto
vm-tempremoved: Il tuo saluto è stato eliminato vm-then-pound: poi premere sterlina
'''

CORE_FR = '''; Core Asterisk Sounds in French
vm-goodbye: Au revoir.
vm-then-pound: puis appuyez sur le carré.
'''


def write_core_sounds(base: Path, lang: str, text: str, *, gz: bool = True) -> Path:
    """``usr/share/doc/asterisk-core-sounds-<lang>/core-sounds-<lang>.txt(.gz)``."""
    folder = base / DOC / f"asterisk-core-sounds-{lang}"
    folder.mkdir(parents=True, exist_ok=True)
    if not gz:
        return write_text(folder / f"core-sounds-{lang}.txt", text)
    path = folder / f"core-sounds-{lang}.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _tone(seconds: float, rate: int, pitch: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * pitch * t)).astype(np.float32)


def write_g722(path: Path, *, seconds: float = 0.4, pitch: float = 440.0) -> Path:
    """A raw G.722 stream (16 kHz mono), encoded by PyAV as the g722 packages ship it."""
    import av

    samples = (_tone(seconds, 16_000, pitch) * 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="g722") as container:
        stream = container.add_stream("g722", rate=16_000)
        stream.layout = "mono"
        for start in range(0, samples.size, 1600):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1600], format="s16",
                                               layout="mono")
            frame.sample_rate = 16_000
            frame.pts = start
            frame.time_base = Fraction(1, 16_000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


CORE_CLIPS = {
    "en_US_f_Allison": ("beep", "digits/1", "letters/at", "letters/ascii123", "silence/1",
                        "spy-iax2", "vm-goodbye", "conf-adminmenu"),
    "es_MX_f_Allison": ("digits/0", "digits/1F", "letters/ascii123", "vm-goodbye",
                        "vm-tempgreetactive", "dir-welcome", "conf-adminmenu", "vm-then-pound",
                        "silence/1", "beep"),
    "it_IT_m_Carlo": ("beep", "digits/1", "vm-goodbye", "vm-then-pound", "vm-tempremoved"),
}


def build_asterisk(base: Path) -> Path:
    """asterisk-core-sounds-{en,es,it}{,-g722} unpacked at `base`; returns `base`.

    Also writes it_IT_f_Menardi (a WAV prompt set, not G.722) and the symlinked top-level
    ``digits/es`` folder the prompt packages add: neither is a core voice.
    """
    pitch = 300.0
    for voice, clips in CORE_CLIPS.items():
        for name in clips:
            pitch += 23
            write_g722(base / SOUNDS / voice / f"{name}.g722", pitch=pitch)
    (base / SOUNDS / "ru_RU_f_IvrvoiceRU").mkdir(parents=True)
    (base / SOUNDS / "ru_RU_f_IvrvoiceRU" / "is.g722").write_bytes(b"")  # as the package has
    write_tone(base / SOUNDS / "it_IT_f_Menardi" / "vm-goodbye.wav", sample_rate=8000)
    (base / SOUNDS / "es" / "digits").mkdir(parents=True)
    (base / SOUNDS / "digits").mkdir(parents=True)
    (base / SOUNDS / "digits" / "es").symlink_to("../es/digits")
    write_core_sounds(base, "en", CORE_EN)
    write_core_sounds(base, "es", CORE_ES)
    write_core_sounds(base, "it", CORE_IT)
    write_core_sounds(base, "ru", "; Core Asterisk Sounds in Russian\nis:\n")
    return base


# --- community prompt sets -------------------------------------------------------------------

PROMPTS_IT = '''; Core Asterisk Sounds in Italian
beep: un suono beep
silence/1: (1 secondo di silenzio)
agent-pass: Prego inserire la password seguita dal tasto cancelletto.
agent-user: Accesso agente. Prego inserire il numero di agente.
auth-incorrect: Password errata. Prego inserire la password.
demo-thanks: Grazie per aver provato la demo di Asterisk.
'''

PROMPTS_EN = '''; Core Asterisk Sounds in English
beep: [this is a simple beep tone]
silence/1: (1 second of silence)
agent-pass: Please enter your password followed by the pound key.
agent-user: Agent login.  Please enter your agent number followed by the pound key.
auth-incorrect: Password incorrect.  Please enter your password followed by the pound key.
demo-thanks: Goodbye.  Thank you for trying out the Asterisk demo.
vm-goodbye: Goodbye.
'''

PROMPTS_FR = '''; Core Asterisk Sounds in French
vm-goodbye: Au revoir.
'''


def write_gsm(path: Path, *, seconds: float = 0.5, pitch: float = 350.0) -> Path:
    """A headerless GSM 6.10 file (8 kHz mono), the format of the fr/es prompt sets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _tone(seconds, 8000, pitch), 8000, format="RAW", subtype="GSM610")
    return path


def build_asterisk_prompts(base: Path) -> Path:
    """asterisk-prompt-it-menardi-wav and asterisk-prompt-fr-armelle (with the core-sounds
    text packages they take transcripts from) unpacked at `base`; es-co is not installed.

    Menardi's ``demo-thanks`` is long (12 s) for its short core text, as in the real set.
    """
    menardi = base / SOUNDS / "it_IT_f_Menardi"
    # Speaking rate of the core texts here: ~15 characters per second.
    for name, seconds in (("agent-pass", 3.8), ("agent-user", 3.4), ("auth-incorrect", 3.6),
                          ("demo-thanks", 12.0), ("beep", 0.3), ("silence/1", 1.0),
                          ("conf-nuovo", 1.0), ("digits/1", 0.5)):
        write_tone(menardi / f"{name}.wav", seconds=seconds, sample_rate=8000)
    write_gsm(base / SOUNDS / "fr" / "vm-goodbye.gsm")
    write_gsm(base / SOUNDS / "fr" / "digits" / "1.gsm", pitch=420.0)
    write_core_sounds(base, "it", PROMPTS_IT, gz=False)
    write_core_sounds(base, "en", PROMPTS_EN)
    write_core_sounds(base, "fr", PROMPTS_FR)
    return base


# --- 0 A.D. ----------------------------------------------------------------------------------

ZEROAD_ZIP = "usr/share/games/0ad/mods/public/public.zip"
# Entry names as in 0ad-data 0.0.26's public.zip, with its oddities: run-together commands
# (Asyouwish), two-digit and missing numbers, a sound-group .xml beside each clip, fauna files
# named by event (attack1, squeal_move), a death_ prefix, a generic death naming no animal,
# and clips outside the folders the recipes read (movement, music).
ZEROAD_OGG = (
    "audio/voice/greek/civ/civ_female_attack_1.ogg",
    "audio/voice/greek/civ/civ_female_what_is_it_3.ogg",
    "audio/voice/greek/civ/civ_male_Asyouwish_1.ogg",
    "audio/voice/napatan/civ/civ_female_hello.ogg",
    "audio/voice/latin/civ/civ_male_attack_10.ogg",
    "audio/voice/global/civ_dog_bark.ogg",
    "audio/actor/fauna/animal/cattle_03.ogg",
    "audio/actor/fauna/animal/horse_attack1.ogg",
    "audio/actor/fauna/animal/pig_squeal_move.ogg",
    "audio/actor/fauna/death/goat_10.ogg",
    "audio/actor/fauna/death/death_camel_10.ogg",
    "audio/actor/fauna/death/Animal_death_generic_10.ogg",
    "audio/actor/fauna/movement/camel_10.ogg",
    "audio/music/An_old_Warhorse_goes_to_Pasture.ogg",
)
ZEROAD_XML = ('<?xml version="1.0" encoding="utf-8" standalone="no" ?>\n<SoundGroup>\n'
              '\t<Gain>0.8</Gain>\n\t<Path>audio/voice/greek/civ</Path>\n'
              '\t<Sound>civ_female_attack_1.ogg</Sound>\n</SoundGroup>\n')


def build_zeroad(base: Path, entries: tuple[str, ...] = ZEROAD_OGG) -> Path:
    """0ad-data's public.zip (stored entries, OGG Vorbis at 44.1 kHz) at `base`; returns
    `base`."""
    import io
    import zipfile

    path = base / ZEROAD_ZIP
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(0.3 * 44_100)) / 44_100
    with zipfile.ZipFile(path, "w") as archive:
        for i, name in enumerate(entries):
            buf = io.BytesIO()
            sf.write(buf, (0.2 * np.sin(2 * np.pi * (180 + 40 * i) * t)).astype(np.float32),
                     44_100, format="OGG", subtype="VORBIS")
            archive.writestr(name, buf.getvalue())
        archive.writestr("audio/voice/greek/civ/civ_female_attack.xml", ZEROAD_XML)
    return base
