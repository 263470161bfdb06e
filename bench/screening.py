"""Screening benchmark: recall and flag rate per script, the matcher before this change and
now, and rapidfuzz baselines, in one run.

    .venv/bin/python bench/screening.py [--lists DIR] [--queries N] [--script-queries N]
        [--seeds held-out|tune] [--before REV] [--baseline-queries N]

Lists: the 3 May 2024 SDN with the December 2025 alias and address files (aliases of entries no
longer listed are skipped) and the UN consolidated list of 27 Feb 2026, whose original-script
names (Arabic, Cyrillic) give probes in both directions: each UN entry with one is split into
its Latin names and its original-script names, so that an Arabic query must find the Latin
names ("script -> Latin") and a Latin query the Arabic ones ("Latin -> script", against a
matcher of the original-script names alone).

Probes, per script: Latin names perturbed (typo, reordered, "SURNAME, Given" written
naturally, a middle name dropped, given + family name only, unchanged); the UN's own
original-script names, whole and as given + family name only (first and last word; Russian
patronymics dropped); SDN names written in Cyrillic (reverse BGN/PCGN), Arabic and Persian
(letter tables, short vowels left out), Chinese (pinyin syllables -> Han by inverting ICU's
Han-Latin; and pinyin with tone marks, with syllables apart, joined), Korean (Hangul by
inverting the DPRK and McCune-Reischauer tables of clearance.screening.hangul: what is tested
is the lists' inconsistent spellings, "Tong-Myo'ng" / "TONG MYONG", not the table). The lists
carry no Japanese names, so Japanese has a flag rate only. Common names: Latin as before, and
per script from bench/screening_names.toml, screened against SDN + UN as loaded (original
scripts included).

Held out: entries are split in two by a hash of their id; the tune set (entries of even hash,
seed 6) is what the matcher's rules and constants were chosen on, the held-out set (odd hash,
seed 90006) is only measured, and is the figure in docs/screening.md. The common-name pools are
shared; their combinations differ by seed.

"before" is the matcher at git revision --before (the code before the cross-script work),
loaded from git into a temporary package and run on the same probes in the same process.
Recall: the right entry among the matches (potential or match); flagged: a common name's status
is not clear; queries/s on one core over every probe and common name.
"""

from __future__ import annotations

import argparse
import importlib
import random
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import unicodedata
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import icu  # type: ignore[import-untyped]
from rapidfuzz import fuzz, process, utils

from clearance.screening import hangul
from clearance.screening.loaders import load
from clearance.screening.matcher import Matcher
from clearance.screening.models import EntityType, Entry, ListFormat, Outcome, Query
from clearance.screening.normalise import natural_order, token_readings, tokens

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LISTS = ROOT.parent / "shared" / "data" / "lists"
NAMES = Path(__file__).with_name("screening_names.toml")
BEFORE = "c5bbbba"  # the matcher before issue 18 item 5 (names in other scripts)
SEEDS = {"tune": 6, "held-out": 90_006}
SCRIPTS = ("Latin", "Cyrillic", "Arabic", "Persian", "Chinese", "Korean", "Japanese")
CUTOFF = 88  # rapidfuzz score (0-100) from which a baseline hit counts as flagged
PATRONYMIC = re.compile(r"(ovich|evich|ovna|evna|ichna|ович|евич|овна|евна|ична)$", re.I)

FIRST = """james mary robert patricia john jennifer michael linda david elizabeth william susan
richard jessica joseph sarah thomas karen charles lisa christopher nancy daniel betty matthew
sandra anthony ashley mark emily paul donna steven michelle andrew carol kenneth amanda joshua
melissa kevin deborah brian stephanie george rebecca timothy sharon ronald laura jason cynthia
jose maria juan carmen luis ana carlos lucia miguel sofia pedro elena jorge isabel pablo marta
hans anna peter ursula klaus petra wolfgang sabine jurgen monika pierre marie jean sophie luc
camille giovanni giulia marco chiara luca francesca wei fang jing lei yan hiroshi yuki kenji
haruto sakura raj priya amit sunita arjun ananya olga ivan natalia sergei tatiana dmitri irina
ahmed fatima omar aisha youssef layla karim nadia tariq samira emre elif mehmet ayse""".split()
LAST = """smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez
lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris
sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill
flores green adams nelson baker hall rivera campbell mitchell carter roberts muller schmidt
schneider fischer weber meyer wagner becker schulz hoffmann dubois moreau laurent simon michel
leroy rossi russo ferrari esposito bianchi romano colombo ricci wang li zhang liu chen yang huang
zhao wu zhou sato suzuki takahashi tanaka watanabe ito yamamoto nakamura patel sharma singh kumar
gupta mehta shah ivanov smirnov kuznetsov popov sokolov lebedev kozlov novak kowalski nowak
wisniewski yilmaz kaya demir sahin celik haddad khoury mansour nasser saleh farouk""".split()


def _pairs(text: str) -> list[tuple[str, str]]:
    """Pairs written "latin=letter"; longest Latin spellings first (they are tried in order)."""
    return [(a, b) for a, _, b in (p.partition("=") for p in text.split())]


# Latin -> Cyrillic (reverse BGN/PCGN) and Latin -> Arabic letters, to write listed names in the
# scripts people type them in.
_CYRILLIC = _pairs(
    "shch=щ kh=х zh=ж ts=ц ch=ч sh=ш yu=ю ya=я yo=ё ye=е iy=ий "  # noqa: RUF001
    "ey=ей ay=ай oy=ой a=а b=б v=в g=г d=д e=е z=з i=и y=ы k=к "  # noqa: RUF001
    "l=л m=м n=н o=о p=п r=р s=с t=т u=у f=ф c=к q=к w=в x=кс "  # noqa: RUF001
    "h=х j=дж "  # noqa: RUF001
)
_ARABIC = _pairs(
    "sh=ش kh=خ th=ث dh=ذ gh=غ ou=و oo=و ee=ي b=ب t=ت j=ج h=ح d=د "
    "r=ر z=ز s=س f=ف q=ق k=ك l=ل m=م n=ن w=و y=ي g=ج p=ب v=ف c=ك "
    "x=كس i=ي e=ي u=و o=و a=ا "  # noqa: RUF001
)
CYRILLIC_NATIONS = {"RU", "BY", "UA", "KZ", "KG", "TJ", "BG", "RS"}
ARABIC_NATIONS = {"IQ", "SY", "LB", "YE", "SA", "EG", "LY", "JO", "PS", "SD", "AE", "KW", "QA"}


def spell(word: str, table: Sequence[tuple[str, str]], abjad: bool) -> str:
    out, i = [], 0
    if abjad and word[:1] in ("e", "i", "o", "u"):  # a word-initial vowel sits on an alef
        out.append("\u0627")
        i = 1
    while i < len(word):
        if abjad and i > 0 and word[i] == "a":  # short vowels are not written
            i += 1
            continue
        for latin, letter in table:
            if word.startswith(latin, i):
                if not out or out[-1] != letter or not abjad:  # no shadda: doubles fold
                    out.append(letter)
                i += len(latin)
                break
        else:
            i += 1
    return "".join(out)


def typo(name: str, rng: random.Random) -> str:
    words = name.split()
    long = [i for i, w in enumerate(words) if len(w) >= 5]
    if not long:
        return name
    i = rng.choice(long)
    w = words[i]
    p = rng.randrange(1, len(w) - 1)
    kind = rng.choice("sdit")
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    if kind == "s":
        w = w[:p] + letter + w[p + 1 :]
    elif kind == "d":
        w = w[:p] + w[p + 1 :]
    elif kind == "i":
        w = w[:p] + letter + w[p:]
    else:
        w = w[: p - 1] + w[p] + w[p - 1] + w[p + 1 :]
    words[i] = w
    return " ".join(words)


_PERSIAN = _pairs(
    "sh=ش kh=خ zh=ژ ch=چ gh=ق ou=و oo=و ee=ی b=ب t=ت j=ج h=ه d=د "  # noqa: RUF001
    "r=ر z=ز s=س f=ف q=ق k=ک l=ل m=م n=ن w=و y=ی g=گ p=پ v=و c=ک "
    "x=کس i=ی u=و a=ا "  # noqa: RUF001
)
PERSIAN_NATIONS = {"IR", "AF", "TJ"}
CHINESE_NATIONS = {"CN", "HK", "TW", "MO"}
KOREAN_NATIONS = {"KP", "KR"}
# Korean family names as lists spell them -> Hangul (DPRK and South Korean spellings).
_KOREAN_FAMILY = dict(
    pair.split("=")
    for pair in """kim=김 ri=리 li=리 lee=이 yi=이 pak=박 park=박 choe=최 choi=최 jong=정
    chong=정 jung=정 kang=강 jo=조 cho=조 yun=윤 jang=장 chang=장 rim=림 lim=임 han=한 o=오
    oh=오 so=서 sin=신 shin=신 kwon=권 hwang=황 an=안 song=송 ryu=류 yu=유 hong=홍 jon=전
    chon=전 ko=고 mun=문 son=손 yang=양 ryang=량 pae=배 paek=백 ho=허 nam=남 ro=로 ha=하
    cha=차 ju=주 ku=구 min=민 jin=진 ji=지 hyon=현 ryom=렴 thae=태 tae=태 chae=채 kye=계
    sok=석 om=엄 pang=방 pyon=변""".split()
)


@dataclass(frozen=True, slots=True)
class Probe:
    script: str
    direction: str  # "Latin", "script->Latin" or "Latin->script"
    kind: str
    text: str
    entry_id: str


def in_split(entry_id: str, split: str) -> bool:
    return zlib.crc32(entry_id.encode()) % 2 == (0 if split == "tune" else 1)


def script_of(text: str) -> str:
    """The script a name is written in, by its letters' Unicode names."""
    seen = Counter(unicodedata.name(ch, "?").split()[0] for ch in text if ch.isalpha())
    if seen["HANGUL"]:
        return "Korean"
    if seen["HIRAGANA"] or seen["KATAKANA"]:
        return "Japanese"
    if seen["CJK"]:
        return "Chinese"
    if seen["ARABIC"]:
        return "Persian" if re.search("[پچژگکی]", text) else "Arabic"
    if seen["CYRILLIC"]:
        return "Cyrillic"
    return "Latin"


def split_un(entries: Sequence[Entry]) -> tuple[list[Entry], list[Entry]]:
    """Each UN entry as its Latin names, and (id + "#script") its original-script names."""
    latin, script = [], []
    for e in entries:
        own = [n for n in e.names if script_of(n) != "Latin"]
        rest = [n for n in e.names if script_of(n) == "Latin"]
        weak = tuple(n for n in e.weak_names if script_of(n) == "Latin")
        if rest:
            latin.append(replace(e, names=tuple(rest), weak_names=weak))
        if own:
            script.append(replace(e, entry_id=e.entry_id + "#script", names=tuple(own)))
    return latin, script


def given_family(name: str) -> str | None:
    """Given + family name only: patronymics dropped, else the first and last word."""
    words = name.split()
    short = [w for w in words if not PATRONYMIC.search(w)]
    if len(short) < len(words) and len(short) >= 2:
        return " ".join(short)
    return f"{words[0]} {words[-1]}" if len(words) >= 3 else None


def latin_probes(entries: Sequence[Entry], n: int, rng: random.Random) -> list[Probe]:
    out = []
    for e in rng.sample(entries, min(n, len(entries))):
        name = rng.choice(e.names[:4])
        if script_of(name) != "Latin":
            continue
        plain = " ".join(natural_order(name).replace(",", " ").split())
        words = plain.split()
        person = e.entity_type is EntityType.PERSON
        kind = rng.choice(["typo", "typo", "reorder", "natural", "drop-middle", "given+family"])
        kind = rng.choice([kind, "exact"]) if rng.random() < 0.2 else kind
        text = name
        if kind == "reorder":
            text = " ".join(reversed(words))
        elif kind == "natural":
            text = plain
        elif kind == "drop-middle" and person and len(words) >= 3:
            text = " ".join(words[:1] + words[2:])
        elif kind == "given+family" and person and len(words) >= 4:
            text = f"{words[0]} {words[-1]}"
        elif kind == "typo":
            text = typo(plain, rng)
        else:
            kind = "exact"
        out.append(Probe("Latin", "Latin", kind, text, e.entry_id))
    return out


def spelled_probes(entries: Sequence[Entry], n: int, rng: random.Random) -> Iterable[Probe]:
    """SDN people's Latin names written in the script of their nationality."""
    tables = (
        ("Cyrillic", CYRILLIC_NATIONS, _CYRILLIC, False),
        ("Arabic", ARABIC_NATIONS, _ARABIC, True),
        ("Persian", PERSIAN_NATIONS - {"TJ"}, _PERSIAN, True),
    )
    people = [e for e in entries if e.entity_type is EntityType.PERSON]
    for script, nations, table, abjad in tables:
        pool = [e for e in people if set(e.nationalities) & nations]
        for e in rng.sample(pool, min(n, len(pool))):
            words = natural_order(e.names[0]).replace(",", " ").split()
            if rng.random() < 0.3 and (short := given_family(" ".join(words))):
                kind, words = "given+family", short.split()
            else:
                kind = "whole"
            text = " ".join(spell(w.lower(), table, abjad) for w in words)
            yield Probe(script, "script->Latin", kind, text, e.entry_id)


class Han:
    """Pinyin syllable -> a Han character with that reading (ICU Han-Latin inverted)."""

    def __init__(self) -> None:
        plain = icu.Transliterator.createInstance("Han-Latin; Latin-ASCII")
        self.toned = icu.Transliterator.createInstance("Han-Latin")
        self.char: dict[str, str] = {}
        for cp in range(0x4E00, 0x9FA6):
            reading = str(plain.transliterate(chr(cp))).lower()
            if reading.isascii() and reading.isalpha():
                self.char.setdefault(reading, chr(cp))

    def syllables(self, word: str) -> list[str] | None:
        if not word:
            return []
        for cut in range(min(6, len(word)), 0, -1):
            if word[:cut] in self.char and (rest := self.syllables(word[cut:])) is not None:
                return [word[:cut], *rest]
        return None


def chinese_probes(entries: Sequence[Entry], n: int, rng: random.Random) -> Iterable[Probe]:
    han = Han()
    pool = [
        e
        for e in entries
        if e.entity_type is EntityType.PERSON and set(e.nationalities) & CHINESE_NATIONS
    ]
    for e in rng.sample(pool, min(n, len(pool))):
        family, _, given = e.names[0].partition(",")
        family_syl = han.syllables(family.strip().lower())
        given_syl = han.syllables("".join(given.lower().split()))
        if not family_syl or not given_syl or len(family_syl) > 2:
            continue
        chars = "".join(han.char[s] for s in [*family_syl, *given_syl])
        tone = [str(han.toned.transliterate(han.char[s])) for s in [*family_syl, *given_syl]]
        cut = len(family_syl)
        forms = {
            "han": chars,
            "pinyin-tones": f"{''.join(tone[:cut]).title()} {''.join(tone[cut:]).title()}",
            "pinyin-apart": " ".join(s.title() for s in [*family_syl, *given_syl]),
            "pinyin-joined": "".join([*family_syl, *given_syl]).title(),
        }
        kind = rng.choice(list(forms))
        direction = "script->Latin" if kind == "han" else "Latin"
        yield Probe("Chinese", direction, kind, forms[kind], e.entry_id)


def korean_probes(entries: Sequence[Entry], n: int, rng: random.Random) -> Iterable[Probe]:
    block: dict[str, str] = {}
    for scheme in ("dprk", "mr"):
        for cp in range(0xAC00, 0xD7A4):
            block.setdefault(hangul.syllable(chr(cp), scheme), chr(cp))
    pool = [
        e
        for e in entries
        if e.entity_type is EntityType.PERSON and set(e.nationalities) & KOREAN_NATIONS
    ]
    for e in rng.sample(pool, min(n, len(pool))):
        name = rng.choice(e.names[:3])
        family, _, given = re.sub("['\u2019]", "", name.lower()).partition(",")
        parts = given.replace("-", " ").split()
        if family.strip() not in _KOREAN_FAMILY or not parts:
            continue
        if not all(p in block for p in parts):
            continue
        text = _KOREAN_FAMILY[family.strip()] + "".join(block[p] for p in parts)
        yield Probe("Korean", "script->Latin", "hangul", text, e.entry_id)


def un_probes(un: Sequence[Entry], split: str) -> Iterable[Probe]:
    """The UN's original-script names, and its Latin names against them."""
    for e in un:
        if not in_split(e.entry_id, split) or e.entity_type is not EntityType.PERSON:
            continue
        own = [n for n in e.names if script_of(n) != "Latin"]
        if not own:
            continue
        script = script_of(own[0])
        for text in (own[0], given_family(own[0])):
            if text:
                kind = "whole" if text == own[0] else "given+family"
                yield Probe(script, "script->Latin", "UN " + kind, text, e.entry_id)
        latin = e.names[0]
        for text in (latin, given_family(latin)):
            if text:
                kind = "whole" if text == latin else "given+family"
                yield Probe(script, "Latin->script", "UN " + kind, text, e.entry_id + "#script")


def common_names(entries: Sequence[Entry], n: int, rng: random.Random) -> dict[str, list[str]]:
    """Per script, up to n common names whose tokens are not a listed name's."""
    listed = {frozenset(tokens(name)) for e in entries for name in e.names}
    pools = tomllib.loads(NAMES.read_text(encoding="utf-8"))
    pools["latin"] = {"given": " ".join(FIRST), "family": " ".join(LAST)}
    out: dict[str, list[str]] = {}
    for script in SCRIPTS:
        given = pools[script.lower()]["given"].split()
        family = pools[script.lower()]["family"].split()
        names: set[str] = set()
        for _ in range(n * 20):
            if len(names) >= n:
                break
            g, f = rng.choice(given), rng.choice(family)
            if script == "Japanese" and (script_of(g) == "Japanese") != (
                script_of(f) == "Japanese"
            ):
                continue
            if script in ("Chinese", "Korean") or (
                script == "Japanese" and script_of(g) != "Japanese"
            ):
                name = f + g  # family name first, no space
            elif script == "Japanese":
                name = f"{f} {g}"
            else:
                name = f"{g} {f}".title() if script == "Latin" else f"{g} {f}"
            if frozenset(tokens(name)) not in listed:
                names.add(name)
        out[script] = sorted(names)
    return out


def load_before(rev: str, into: Path) -> Any:
    """The matcher at git revision `rev`, as a package `screening_before` under `into`."""
    package = into / "screening_before"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module in ("normalise", "index", "scoring", "matcher"):
        source = subprocess.run(
            ["git", "show", f"{rev}:src/clearance/screening/{module}.py"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        source = re.sub(
            r"clearance\.screening\.(normalise|index|scoring|matcher)",
            r"screening_before.\1",
            source,
        ).replace("from clearance.screening import scoring", "from screening_before import scoring")
        (package / f"{module}.py").write_text(source)
    sys.path.insert(0, str(into))
    return importlib.import_module("screening_before.matcher").Matcher


@dataclass
class Tally:
    found: Counter[tuple[str, str]]
    total: Counter[tuple[str, str]]
    kinds: dict[tuple[str, str], Counter[str]]
    kind_total: dict[tuple[str, str], Counter[str]]
    flagged: Counter[str]
    common: Counter[str]
    screened: int = 0
    seconds: float = 0.0


def run(matchers: dict[str, Any], probes: Sequence[Probe], common: dict[str, list[str]]) -> Tally:
    """`matchers`: "forward" (originals removed), "reverse" (originals only), "full"."""
    tally = Tally(
        Counter(), Counter(), defaultdict(Counter), defaultdict(Counter), Counter(), Counter()
    )
    # CPU time of this process: the machine is shared, and wall time would count other work.
    start = time.process_time()
    for p in probes:
        matcher = matchers["reverse" if p.direction == "Latin->script" else "forward"]
        result = matcher.screen(Query(p.text))
        hit = any(m.entry_id == p.entry_id for m in result.matches)
        key = (p.script, "Latin->script" if p.direction == "Latin->script" else "forward")
        tally.total[key] += 1
        tally.found[key] += hit
        tally.kind_total[key][p.kind] += 1
        tally.kinds[key][p.kind] += hit
    for script, names in common.items():
        for name in names:
            tally.common[script] += 1
            tally.flagged[script] += (
                matchers["full"].screen(Query(name)).status is not Outcome.CLEAR
            )
    tally.seconds = time.process_time() - start
    tally.screened = len(probes) + sum(tally.common.values())
    return tally


def _pct(num: int, den: int) -> str:
    return f"{num / den:6.3f}" if den else "     -"


def report(before: Tally, after: Tally) -> None:
    print(
        f"\n{'script':9s} {'direction':14s} {'probes':>6s}  {'recall before':>13s} {'after':>6s}"
        f"   {'common':>6s}  {'flagged before':>14s} {'after':>7s}"
    )
    for script in SCRIPTS:
        keys = [k for k in after.total if k[0] == script] or [(script, "forward")]
        for i, key in enumerate(sorted(keys, key=lambda k: k[1] != "forward")):
            direction = {"forward": "-> Latin" if script != "Latin" else "Latin"}.get(
                key[1], "Latin -> script"
            )
            if script != "Latin" and key[1] == "forward":
                direction = "script -> Latin"
            common = after.common[script] if i == 0 else 0
            flags = (
                f"{common:6d}  {before.flagged[script] / common:14.2%} "
                f"{after.flagged[script] / common:7.2%}"
                if common
                else ""
            )
            print(
                f"{script if i == 0 else '':9s} {direction:14s} {after.total[key]:6d}  "
                f"{_pct(before.found[key], before.total[key]):>13s} "
                f"{_pct(after.found[key], after.total[key]):>6s}   {flags}"
            )
    probes = sum(after.total.values())
    commons = sum(after.common.values())
    print(
        f"{'overall':9s} {'':14s} {probes:6d}  {sum(before.found.values()) / probes:13.3f} "
        f"{sum(after.found.values()) / probes:6.3f}   {commons:6d}  "
        f"{sum(before.flagged.values()) / commons:14.2%}"
        f" {sum(after.flagged.values()) / commons:7.2%}"
    )
    print(
        f"queries/s (one core, CPU time): before {before.screened / before.seconds:,.0f}, "
        f"after {after.screened / after.seconds:,.0f}"
    )
    print("\nrecall by kind (before -> after):")
    for key in sorted(after.kind_total):
        parts = [
            f"{kind} {before.kinds[key][kind] / n:.2f}->{after.kinds[key][kind] / n:.2f} ({n})"
            for kind, n in sorted(after.kind_total[key].items())
        ]
        print(f"  {key[0]} {key[1]}: " + ", ".join(parts))


def run_baseline(
    scorer: Callable[..., float],
    names: list[str],
    owners: list[str],
    queries: Sequence[Probe],
    common: list[str],
) -> dict[str, object]:
    processed = [utils.default_process(n) for n in names]
    start = time.perf_counter()
    hits = 0
    for probe in queries:
        text, entry_id = probe.text, probe.entry_id
        best = process.extract(
            utils.default_process(text), processed, scorer=scorer, score_cutoff=CUTOFF, limit=5
        )
        hits += any(owners[i] == entry_id for _name, _score, i in best)
    flagged = 0
    for text in common:
        one = process.extractOne(
            utils.default_process(text), processed, scorer=scorer, score_cutoff=CUTOFF
        )
        flagged += one is not None
    elapsed = time.perf_counter() - start
    return {
        "recall": hits / len(queries),
        "flagged": flagged / len(common),
        "qps": (len(queries) + len(common)) / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=Path, default=DEFAULT_LISTS)
    parser.add_argument("--queries", type=int, default=3000, help="Latin probes")
    parser.add_argument("--script-queries", type=int, default=400, help="per generated script")
    parser.add_argument("--common", type=int, default=1000, help="common names per script")
    parser.add_argument("--seeds", choices=sorted(SEEDS), default="held-out")
    parser.add_argument("--before", default=BEFORE, help="git revision of the 'before' matcher")
    parser.add_argument("--baseline-queries", type=int, default=400)
    args = parser.parse_args()
    rng = random.Random(SEEDS[args.seeds])
    files = [
        args.lists / "ofac-sdn-2024-05-03" / "sdn.csv",
        args.lists / "ofac-add-alt-2025-12" / "alt.csv",
        args.lists / "ofac-add-alt-2025-12" / "add.csv",
    ]
    start = time.perf_counter()
    sdn = load(ListFormat.OFAC_SDN, [(f.name, f.read_bytes()) for f in files]).entries
    un_file = args.lists / "un-consolidated-2026-02-27.xml"
    un = load(ListFormat.UN_XML, [(un_file.name, un_file.read_bytes())]).entries
    loaded = time.perf_counter()
    un_latin, un_script = split_un(un)
    lists: dict[str, list[tuple[str, Sequence[Entry]]]] = {
        "forward": [("OFAC SDN", sdn), ("UN", un_latin)],
        "reverse": [("UN original script", un_script)],
        "full": [("OFAC SDN", sdn), ("UN", un)],
    }
    after = {k: Matcher.build(v) for k, v in lists.items()}
    indexed = time.perf_counter()
    print(
        f"SDN 2024-05-03: {len(sdn)} entries; UN 2026-02-27: {len(un)} entries,"
        f" {len(un_script)} with original-script names; {len(after['full'].names)} names"
    )
    print(f"  load {loaded - start:.2f} s + index (3 matchers) {indexed - loaded:.2f} s")

    mine = [e for e in sdn if in_split(e.entry_id, args.seeds) and tokens(e.primary_name)]
    probes = latin_probes(mine, args.queries, rng)
    probes += spelled_probes(mine, args.script_queries, rng)
    probes += chinese_probes(mine, args.script_queries, rng)
    probes += korean_probes(mine, args.script_queries, rng)
    probes += un_probes(un, args.seeds)
    common = common_names([*sdn, *un], args.common, rng)
    print(
        f"{args.seeds} set (seed {SEEDS[args.seeds]}): {len(probes)} probes,"
        f" {sum(map(len, common.values()))} common names"
    )
    with tempfile.TemporaryDirectory() as tmp:
        old = load_before(args.before, Path(tmp))
        before = {k: old.build(v) for k, v in lists.items()}
        # Both start with cold tokenisation caches (building the probes warmed this one).
        importlib.import_module("screening_before.normalise").tokens.cache_clear()
        tally_before = run(before, probes, common)
    token_readings.cache_clear()
    tally_after = run(after, probes, common)
    print(f"clearance matcher, before = {args.before}, after = working tree:")
    report(tally_before, tally_after)

    latin = [p for p in probes if p.direction == "Latin" and p.script == "Latin"]
    forward = after["forward"]
    names = [n.name for n in forward.names if not n.weak]
    owners = [n.entry.entry_id for n in forward.names if not n.weak]
    sample = latin[: args.baseline_queries]
    sample_common = common["Latin"][: args.baseline_queries]
    if not sample:
        return
    print()
    for label, scorer in (
        ("token_sort_ratio", fuzz.token_sort_ratio),
        ("token_set_ratio", fuzz.token_set_ratio),
    ):
        base = run_baseline(scorer, names, owners, sample, sample_common)
        print(
            f"rapidfuzz {label:16s} (Latin only): recall {base['recall']:.3f}"
            f"  flagged {base['flagged']:.2%}  {base['qps']:,.0f} q/s"
            f"   (cutoff {CUTOFF}, {len(sample)} + {len(sample_common)} queries)"
        )


if __name__ == "__main__":
    main()
