"""Rule sets (docs/rules.md): load a folder of TOML versions, validate, pick the version in force.

Parsing and validation live here once, in plain Python, for every backend.  A
rules folder with any problem is refused as a whole, with *every* problem
listed, each naming file, rule and key.
"""
from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from txcore import money, paths
from txcore.errors import RulesError
from txcore.vocab import BANK_RE, CHANNELS, FEE_ITEMS, KINDS, MAX_AMOUNT, MCC_RE

#: Bounds of rule values (docs/rules.md#bounds-of-rule-values).  Money (fixed, min, max, cap, min_spend,
#: amount_below, a band's upto) is at most the largest amount, 10**12 fen, so that no fee
#: or discount of any amount a row may carry overflows 64-bit integers on any backend,
#: nor do the control totals of a batch; free_per_month fits the int16 free_slot column;
#: the ids of a rules folder fit the compiled backend's 16-bit codes with room to spare
#: for the ids a state brings from earlier rule books.
MAX_MONEY = MAX_AMOUNT
MAX_BP = 10000
MAX_FREE_PER_MONTH = 2**15 - 1
MAX_IDS = 2**14

TOP_KEYS = {"id", "effective_from", "timezone", "merchants", "fee", "waiver", "discount"}
CONDITION_KEYS = {"kind", "channel", "fee_item", "issuer", "mcc", "cross_bank", "same_city",
                  "amount_below"}
FORMULA_KEYS = ("fixed", "pct_bp", "min", "max")
BAND_KEYS = {"upto", *FORMULA_KEYS}
RULE_KEYS = {
    "fee": {"id", *CONDITION_KEYS, *FORMULA_KEYS, "tiers"},
    "waiver": {"id", *CONDITION_KEYS, "free_per_month"},
    "discount": {"id", *CONDITION_KEYS, "discount_bp", "cap", "min_spend"},
}


# --------------------------------------------------------------------------- model

@dataclass(frozen=True)
class Facts:
    """What a rule's conditions look at, for one accepted record."""

    kind: str
    channel: str | None
    fee_item: str | None
    issuer: str
    mcc: str | None
    cross_bank: bool
    same_city: bool
    amount: int


@dataclass(frozen=True)
class Conditions:
    """An omitted condition (None) matches anything."""

    kind: frozenset | None = None
    channel: frozenset | None = None
    fee_item: frozenset | None = None
    issuer: frozenset | None = None
    mcc: frozenset | None = None
    cross_bank: bool | None = None
    same_city: bool | None = None
    amount_below: int | None = None

    def mismatches(self, f: Facts) -> list[str]:
        """Why these conditions do not match, in words (empty when they match)."""
        out = []
        for name in ("kind", "channel", "fee_item", "issuer", "mcc"):
            want, have = getattr(self, name), getattr(f, name)
            if want is not None and have not in want:
                out.append(f"{name} is {have or 'none'}, the rule wants {' or '.join(sorted(want))}")
        for name, yes, no in (("cross_bank", "another bank's terminal or payee",
                               "the card's own bank"),
                              ("same_city", "the home city", "another city")):
            want = getattr(self, name)
            if want is not None and getattr(f, name) != want:
                out.append(f"the rule is for {yes if want else no}")
        if self.amount_below is not None and not f.amount < self.amount_below:
            out.append(f"amount {f.amount} is not below {self.amount_below}")
        return out

    def matches(self, f: Facts) -> bool:
        return ((self.kind is None or f.kind in self.kind)
                and (self.channel is None or f.channel in self.channel)
                and (self.fee_item is None or f.fee_item in self.fee_item)
                and (self.issuer is None or f.issuer in self.issuer)
                and (self.mcc is None or f.mcc in self.mcc)
                and (self.cross_bank is None or f.cross_bank == self.cross_bank)
                and (self.same_city is None or f.same_city == self.same_city)
                and (self.amount_below is None or f.amount < self.amount_below))


@dataclass(frozen=True)
class Band:
    """One amount band; ``upto`` is inclusive, None on the last (open) band."""

    upto: int | None
    fixed: int = 0
    pct_bp: int = 0
    min: int = 0
    max: int = 0


@dataclass(frozen=True)
class FeeRule:
    id: str
    when: Conditions
    bands: tuple[Band, ...]  # a top-level formula is one open band

    def fee(self, amount: int) -> int:
        for band in self.bands:
            if band.upto is None or amount <= band.upto:
                return money.formula(amount, band.fixed, band.pct_bp, band.min, band.max)
        raise AssertionError("the last band is open")  # guaranteed by validation


@dataclass(frozen=True)
class WaiverRule:
    id: str
    when: Conditions
    free_per_month: int | None  # None = unlimited


@dataclass(frozen=True)
class DiscountRule:
    id: str
    when: Conditions
    discount_bp: int
    cap: int = 0
    min_spend: int = 0


@dataclass
class RuleSet:
    """One rule-set version (one TOML file)."""

    id: str
    effective_from: dt.date
    timezone: str
    source: Path
    fees: tuple[FeeRule, ...] = ()
    waivers: tuple[WaiverRule, ...] = ()
    discounts: tuple[DiscountRule, ...] = ()
    merchants_path: Path | None = None
    merchants: object = None  # txcore.rules.refdata.Merchants, set by load_book
    zone: ZoneInfo = field(init=False)

    def __post_init__(self):
        self.zone = ZoneInfo(self.timezone)

    def first_fee(self, facts: Facts) -> FeeRule | None:
        return next((r for r in self.fees if r.when.matches(facts)), None)

    def first_waiver(self, facts: Facts) -> WaiverRule | None:
        return next((r for r in self.waivers if r.when.matches(facts)), None)

    def first_discount(self, facts: Facts) -> DiscountRule | None:
        return next((r for r in self.discounts if r.when.matches(facts)), None)


class RuleBook:
    """All versions of a rules folder, ordered by ``effective_from``."""

    def __init__(self, versions: list[RuleSet], folder: Path | None = None):
        self.versions = sorted(versions, key=lambda v: v.effective_from)
        self.folder = folder

    def for_instant(self, instant: dt.datetime) -> tuple[RuleSet, dt.date] | None:
        """Version in force for an aware instant, and its local date there.

        Each version's local date is taken in its own zone (docs/pricing.md#settled-edge-cases).
        """
        for version in reversed(self.versions):
            local_date = instant.astimezone(version.zone).date()
            if version.effective_from <= local_date:
                return version, local_date
        return None

    def zone_at(self, instant: dt.datetime) -> ZoneInfo:
        """The zone of the version in force at ``instant`` (of the first when none is)."""
        found = self.for_instant(instant)
        return (found[0] if found else self.versions[0]).zone

    def for_naive(self, wall: dt.datetime) -> tuple[RuleSet, dt.datetime] | None:
        """Version in force for a wall-clock time without offset, and the instant.

        The naive date is the local date; the chosen version's zone makes it an
        instant (docs/pricing.md#settled-edge-cases).
        """
        for version in reversed(self.versions):
            if version.effective_from <= wall.date():
                return version, wall.replace(tzinfo=version.zone)
        return None


# --------------------------------------------------------------------- validation

class _Checker:
    """Collects problems for one file; each names the file, the rule and the key."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def problem(self, where: str, key: str | None, message: str):
        parts = [self.path.name]
        if where:
            parts.append(where)
        if key:
            parts.append(f"key '{key}'")
        self.problems.append(": ".join(parts) + f": {message}")

    def integer(self, where, key, value, lo=0, hi=MAX_MONEY) -> int | None:
        """A whole number from ``lo`` to ``hi`` (by default money: 0 to 10**12 fen)."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(where, key, f"must be an integer, got {value!r}")
            return None
        if not lo <= value <= hi:
            what = "negative money" if lo == 0 and value < 0 else "out of range"
            self.problem(where, key, f"{what}: {_short(value)} (must be {lo}..{hi})")
            return None
        return value

    def words(self, where, key, value, vocab=None, pattern=None, allow_str=False):
        if allow_str and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            expected = "a string or a list of strings" if allow_str else "a non-empty list of strings"
            self.problem(where, key, f"must be {expected}, got {value!r}")
            return None
        bad = [v for v in value
               if (vocab is not None and v not in vocab)
               or (pattern is not None and not pattern.fullmatch(v))]
        if bad:
            allowed = f"one of {', '.join(vocab)}" if vocab else f"matching {pattern.pattern}"
            self.problem(where, key, f"unknown value(s) {bad!r} (must be {allowed})")
            return None
        return frozenset(value)

    def conditions(self, where, table) -> Conditions:
        c = {}
        if "kind" in table:
            c["kind"] = self.words(where, "kind", table["kind"], KINDS, allow_str=True)
        for key, vocab, pattern in (("channel", CHANNELS, None), ("fee_item", FEE_ITEMS, None),
                                    ("issuer", None, BANK_RE), ("mcc", None, MCC_RE)):
            if key in table:
                c[key] = self.words(where, key, table[key], vocab, pattern)
        for key in ("cross_bank", "same_city"):
            if key in table:
                if isinstance(table[key], bool):
                    c[key] = table[key]
                else:
                    self.problem(where, key, f"must be true or false, got {table[key]!r}")
        if "amount_below" in table:
            c["amount_below"] = self.integer(where, "amount_below", table["amount_below"])
        return Conditions(**c)

    def formula(self, where, table, keys=FORMULA_KEYS) -> dict:
        values = {}
        for key in keys:
            if key in table:
                hi = MAX_BP if key == "pct_bp" else MAX_MONEY
                values[key] = self.integer(where, key, table[key], hi=hi)
        lo, hi = values.get("min") or 0, values.get("max") or 0
        if hi > 0 and lo > hi:
            self.problem(where, "min", f"min {lo} is greater than max {hi}")
        return {k: v for k, v in values.items() if v is not None}


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text.lstrip('-'))} digits)"


def _rule_where(section: str, index: int, table) -> str:
    rid = table.get("id") if isinstance(table, dict) else None
    return f"[[{section}]] '{rid}'" if isinstance(rid, str) else f"[[{section}]] #{index + 1}"


def _parse_file(path: Path) -> tuple[RuleSet | None, list[str]]:
    chk = _Checker(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        chk.problem("", None, f"cannot be parsed: {exc}")
        return None, chk.problems
    except RecursionError:
        chk.problem("", None, "cannot be parsed: arrays or tables nested too deeply")
        return None, chk.problems

    for key in sorted(set(doc) - TOP_KEYS):
        chk.problem("", key, "unknown key")
    vid = doc.get("id")
    if not isinstance(vid, str) or not vid:
        chk.problem("", "id", f"must be a non-empty string, got {vid!r}")
    eff = doc.get("effective_from")
    if not (isinstance(eff, dt.date) and not isinstance(eff, dt.datetime)):
        chk.problem("", "effective_from", f"must be a date like 2013-09-01, got {eff!r}")
    tz = doc.get("timezone", "Asia/Shanghai")
    try:
        if not isinstance(tz, str):
            raise ZoneInfoNotFoundError(tz)
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        chk.problem("", "timezone", f"unknown time zone {tz!r}")
    merchants_path = None
    if "merchants" in doc:
        if isinstance(doc["merchants"], str) and doc["merchants"]:
            merchants_path = (path.parent / doc["merchants"]).resolve()
        else:
            chk.problem("", "merchants", f"must be a file name, got {doc['merchants']!r}")

    rules: dict[str, list] = {"fee": [], "waiver": [], "discount": []}
    seen_ids: set[str] = set()
    for section in ("fee", "waiver", "discount"):
        tables = doc.get(section, [])
        if not isinstance(tables, list):
            chk.problem("", section, f"must be an array of tables [[{section}]]")
            continue
        for index, table in enumerate(tables):
            where = _rule_where(section, index, table)
            if not isinstance(table, dict):
                chk.problem(where, None, "must be a table")
                continue
            for key in sorted(set(table) - RULE_KEYS[section]):
                chk.problem(where, key, "unknown key")
            rid = table.get("id")
            if not isinstance(rid, str) or not rid:
                chk.problem(where, "id", f"must be a non-empty string, got {rid!r}")
                rid = None
            elif rid in seen_ids:
                chk.problem(where, "id", f"duplicate rule id {rid!r}")
            else:
                seen_ids.add(rid)
            when = chk.conditions(where, table)
            if section == "fee":
                bands = _fee_bands(chk, where, table)
                rules["fee"].append(FeeRule(rid, when, bands))
            elif section == "waiver":
                quota = None
                if "free_per_month" in table:
                    quota = chk.integer(where, "free_per_month", table["free_per_month"], lo=1,
                                        hi=MAX_FREE_PER_MONTH)
                rules["waiver"].append(WaiverRule(rid, when, quota))
            else:
                if "discount_bp" not in table:
                    chk.problem(where, "discount_bp", "is required")
                bp = chk.integer(where, "discount_bp", table.get("discount_bp", 0), hi=MAX_BP)
                cap = chk.integer(where, "cap", table.get("cap", 0))
                spend = chk.integer(where, "min_spend", table.get("min_spend", 0))
                rules["discount"].append(DiscountRule(rid, when, bp or 0, cap or 0, spend or 0))

    if chk.problems:
        return None, chk.problems
    ruleset = RuleSet(id=vid, effective_from=eff, timezone=tz, source=path,
                      fees=tuple(rules["fee"]), waivers=tuple(rules["waiver"]),
                      discounts=tuple(rules["discount"]), merchants_path=merchants_path)
    return ruleset, []


def _fee_bands(chk: _Checker, where: str, table: dict) -> tuple[Band, ...]:
    if "tiers" not in table:
        return (Band(None, **chk.formula(where, table)),)
    if any(k in table for k in FORMULA_KEYS):
        chk.problem(where, "tiers", "a rule has tiers or a top-level formula, not both")
        chk.formula(where, table)  # report its own problems too
    tiers = table["tiers"]
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, dict) for t in tiers):
        chk.problem(where, "tiers", "must be a non-empty list of {upto, fixed, pct_bp, min, max}")
        return ()
    bands, previous = [], None
    for i, band in enumerate(tiers):
        bwhere = f"{where}: tiers[{i}]"
        for key in sorted(set(band) - BAND_KEYS):
            chk.problem(bwhere, key, "unknown key")
        last = i == len(tiers) - 1
        upto = band.get("upto")
        if last and upto is not None:
            chk.problem(bwhere, "upto", "the last band must be open (no upto)")
        elif not last:
            if upto is None:
                chk.problem(bwhere, "upto", "is required on every band but the last")
            else:
                upto = chk.integer(bwhere, "upto", upto)
                if upto is not None and previous is not None and upto <= previous:
                    chk.problem(bwhere, "upto", f"tiers not increasing: {upto} after {previous}")
                previous = upto if upto is not None else previous
        bands.append(Band(None if last else upto, **chk.formula(bwhere, band)))
    return tuple(bands)


def load_book(folder: str | Path, merchants_override=None) -> RuleBook:
    """Load and validate every ``*.toml`` in ``folder``; raise :class:`RulesError`.

    ``merchants_override`` (a loaded :class:`~txcore.rules.refdata.Merchants`) replaces
    each version's own table (docs/pricing.md#settled-edge-cases); otherwise each version loads the file it
    names, if any.  Reference-data problems there are rules problems too.
    """
    from txcore.errors import RefDataError
    from txcore.rules.refdata import load_merchants

    folder = Path(folder)
    if not folder.is_dir():
        raise RulesError([f"{folder}: not a rules folder"])
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise RulesError([f"{folder}: no rule-set versions (*.toml) found"])
    for path in files:  # a FIFO or a device named *.toml would block or never end
        paths.regular_file(path, "rule-set file", lambda message: RulesError([message]))
    versions, problems = [], []
    for path in files:
        ruleset, found = _parse_file(path)
        problems += found
        if ruleset is not None:
            versions.append(ruleset)
    by_date: dict[dt.date, RuleSet] = {}
    by_id: dict[str, RuleSet] = {}
    for v in versions:
        if v.effective_from in by_date:
            problems.append(f"{v.source.name}: key 'effective_from': {v.effective_from} is also "
                            f"the effective_from of {by_date[v.effective_from].source.name}")
        by_date.setdefault(v.effective_from, v)
        if v.id in by_id:
            problems.append(f"{v.source.name}: key 'id': version id {v.id!r} is also used by "
                            f"{by_id[v.id].source.name}")
        by_id.setdefault(v.id, v)
    ids = {v.id for v in versions} | {r.id for v in versions
                                      for r in (*v.fees, *v.waivers, *v.discounts)}
    if len(ids) > MAX_IDS:
        problems.append(f"{folder}: {len(ids):,} distinct version and rule ids; at most "
                        f"{MAX_IDS:,} are allowed")
    if not problems:
        tables = {}
        for v in versions:
            if merchants_override is not None:
                v.merchants = merchants_override
            elif v.merchants_path is not None:
                try:
                    if v.merchants_path not in tables:
                        tables[v.merchants_path] = load_merchants(v.merchants_path)
                    v.merchants = tables[v.merchants_path]
                except RefDataError as exc:
                    problems += [f"{v.source.name}: key 'merchants': {p}" for p in exc.problems]
    if problems:
        raise RulesError(problems)
    return RuleBook(versions, folder)


def describe(book: RuleBook) -> str:
    """Human-readable listing of a rule book, for ``txcore rules check``."""
    lines = []
    for v in book.versions:
        lines.append(f"{v.id}  effective_from {v.effective_from}  timezone {v.timezone}"
                     f"  ({v.source.name})")
        if v.merchants is not None:
            lines.append(f"  merchants: {len(v.merchants)} partner merchants")
        for section, rules in (("fee", v.fees), ("waiver", v.waivers), ("discount", v.discounts)):
            for r in rules:
                lines.append(f"  [{section}] {r.id}")
    return "\n".join(lines)
