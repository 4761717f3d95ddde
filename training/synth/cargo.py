"""Synthetic customs cargo declarations with a planted fraud mechanism and a biased inspection history.

See ``docs/synthetic-data.md`` for the full description of every planted mechanism, its coefficient
and the legacy targeting rule. The constants below are the single source of truth for those numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.synth.common import (
    MICROS_PER_DAY,
    MICROS_PER_SECOND,
    check_args,
    day_weights,
    format_ids,
    group_rank,
    normalise,
    or_combine,
    revealed_float64,
    revealed_int8,
    sample_days_in_windows,
    select_for_inspection,
    sigmoid,
    str_from_codes,
    str_series,
    timestamps,
    weighted_choice,
    weighted_choice_rows,
    zipf_weights,
)

__all__ = ["CARGO_COLUMNS", "HS_TABLE", "TRANSSHIPMENT_HUBS", "generate_cargo"]

# --------------------------------------------------------------------------------------------------
# Reference tables
# --------------------------------------------------------------------------------------------------

# HS6 code, reference unit value (USD per kg, for an origin with price factor 1.0), MFN tariff rate in
# percent, and a flag "decoy" marking a low-rate code adjacent to a high-rate code (a classic target for
# misclassification: goods of the high-rate code declared under the cheap neighbour).
_HS_ROWS = """
020130 9.5 40 0
020230 6.5 40 0
020329 3.2 25 0
020714 2.6 30 0
020610 3.0 4 1
030211 6.0 12 0
030389 3.0 10 0
030617 9.0 12 0
030432 4.5 9 0
030489 5.0 7 0
040221 3.4 35 0
040510 6.0 38 0
040690 7.5 35 0
040610 5.5 35 0
040410 1.8 5 1
040900 4.5 17 0
070310 0.5 9 0
071290 4.0 12 0
071340 1.0 0 0
070200 1.2 10 0
080300 0.9 16 0
080510 0.8 16 0
080610 2.2 12 0
080132 7.5 0 0
080212 6.5 3.5 0
081090 2.5 9 0
090111 4.2 0 0
090121 9.0 7.5 0
090240 3.2 0 0
090411 4.5 0 0
091011 1.8 0 0
100630 0.9 15 0
110100 0.4 12 0
151190 1.0 9 0
150910 5.0 12 0
160414 5.5 24 0
160250 7.0 17 0
170114 0.5 35 0
170490 4.0 25 0
170410 5.0 25 0
170290 1.0 8 1
180690 7.5 12 0
180100 3.0 0 0
190531 4.0 12 0
200911 1.5 20 0
200799 2.5 24 0
210690 6.0 10 0
220300 1.2 20 0
220421 5.5 30 0
220830 14.0 35 0
220860 6.5 35 0
220840 7.0 35 0
220710 1.3 40 0
220720 1.0 6 1
220900 1.1 6 1
220110 0.35 5 0
240220 55.0 60 0
240210 80.0 45 0
240311 25.0 55 0
240319 30.0 55 0
240120 6.0 10 1
252329 0.08 2 0
271019 2.0 3.5 0
281511 0.5 5 0
293621 30.0 0 0
300490 80.0 0 0
330300 60.0 8 0
330499 25.0 6.5 0
330510 4.0 6 0
340111 3.0 6 0
382499 3.0 6 0
390110 1.4 6.5 0
392020 3.0 6.5 0
392321 2.5 6.5 0
392410 4.0 6.5 0
392690 6.0 6.5 0
401110 4.5 12 0
401120 3.8 12 0
401519 4.0 5 0
420221 80.0 12 0
420222 25.0 12 0
420292 15.0 12 0
420310 60.0 10 0
440710 0.4 0 0
441231 0.8 10 0
441700 5.0 4 0
480256 1.2 0 0
481910 1.3 0 0
482010 3.0 2 0
520100 1.8 0 0
520512 3.5 4 0
520812 6.0 8 0
540233 2.5 4 0
551319 5.0 8 0
610910 15.0 16 0
611020 18.0 16 0
611030 16.0 16 0
610462 20.0 16 0
611596 12.0 16 0
610610 22.0 16 0
611790 10.0 6 1
620342 18.0 16 0
620462 20.0 16 0
620520 22.0 16 0
620193 24.0 16 0
621710 12.0 6 1
630260 7.0 12 0
630790 8.0 6 0
640299 9.0 17 0
640399 28.0 18 0
640411 18.0 17 0
640419 14.0 17 0
640391 30.0 18 0
640610 10.0 3 1
640620 3.5 3 1
650500 20.0 6 0
691110 4.0 12 0
690721 0.4 5 0
701349 3.0 11 0
700992 3.0 4 0
711319 35000.0 2.5 0
711311 900.0 2.5 0
711719 40.0 4 0
720851 0.75 0 0
721049 0.9 0 0
730890 2.5 0 0
731815 3.0 4 0
732393 5.0 3 0
760110 2.6 6 0
760429 4.0 7.5 0
761520 8.0 6 0
820559 7.0 3.5 0
830140 10.0 3 0
841510 12.0 2.7 0
841830 6.0 2 0
842139 20.0 2 0
843149 8.0 0 0
847130 180.0 0 0
847150 120.0 0 0
847330 90.0 0 0
848180 20.0 2.2 0
848210 12.0 8 0
850440 35.0 0 0
851712 700.0 0 0
851762 150.0 0 0
851830 60.0 2 0
852872 25.0 14 0
852990 30.0 3 1
854231 3000.0 0 0
850760 25.0 2.7 0
853710 40.0 2.1 0
854442 10.0 3.3 0
851650 9.0 5 0
850940 10.0 2.2 0
851310 8.0 2.7 0
870323 18.0 10 0
870332 20.0 10 0
870421 12.0 22 0
870899 8.0 4.5 1
871200 12.0 14 0
871494 10.0 4.7 1
871160 30.0 6 0
900490 60.0 2.9 0
901890 150.0 0 0
903180 100.0 0 0
910211 300.0 4.5 0
940161 6.0 0 0
940360 3.5 0 0
940542 15.0 4.7 0
950300 8.0 4.7 0
950490 10.0 2 0
950691 5.0 2.7 0
960321 12.0 3.7 0
961900 3.5 10 0
960810 15.0 3.2 0
"""


@dataclass(frozen=True)
class _HsTable:
    code: np.ndarray  # <U6
    chapter: np.ndarray  # <U2
    ref_unit_value: np.ndarray  # USD/kg
    mfn_rate: np.ndarray  # percent
    decoy: np.ndarray  # bool


def _parse_hs_table() -> _HsTable:
    parts = np.array(_HS_ROWS.split(), dtype="U16").reshape(-1, 4)
    parts = parts[np.argsort(parts[:, 0], kind="stable")]
    code = parts[:, 0].astype("U6")
    return _HsTable(
        code=code,
        chapter=np.strings.slice(code, 0, 2),
        ref_unit_value=parts[:, 1].astype(np.float64),
        mfn_rate=parts[:, 2].astype(np.float64),
        decoy=parts[:, 3] == "1",
    )


HS_TABLE = _parse_hs_table()

#: Chapters whose goods carry high duties (and usually excise): the tariff incentive mechanism.
HIGH_TARIFF_CHAPTERS = ("02", "04", "17", "22", "24", "61", "62", "64")
#: Chapters carrying excise on top of customs duty (tax_type "E00").
EXCISE_CHAPTERS = ("22", "24")

# Origin countries: ISO2, share of declarations, price factor applied to the HS reference unit value,
# and preference regime ("Y": free-trade agreement, "G": GSP, "E": everything-but-arms, "N": MFN only).
_ORIGINS = """
CN 0.30 0.80 N
US 0.07 1.25 N
VN 0.05 0.75 Y
IN 0.05 0.80 G
TR 0.05 0.90 Y
JP 0.03 1.35 Y
KR 0.03 1.15 Y
TW 0.03 1.05 N
TH 0.025 0.85 N
MY 0.02 0.90 N
ID 0.02 0.80 G
BD 0.03 0.65 E
PK 0.015 0.70 G
GB 0.04 1.20 Y
CH 0.03 1.40 Y
NO 0.01 1.30 Y
BR 0.015 0.90 N
AR 0.008 0.95 N
MX 0.01 0.95 Y
CA 0.01 1.20 Y
ZA 0.01 0.95 Y
MA 0.01 0.85 Y
EG 0.008 0.80 Y
NG 0.004 0.80 G
KE 0.004 0.85 E
ET 0.003 0.75 E
UA 0.01 0.80 Y
RS 0.006 0.85 Y
AE 0.01 1.00 N
SG 0.01 1.10 Y
HK 0.01 1.00 N
CL 0.006 1.00 Y
PE 0.005 0.95 Y
CO 0.006 0.90 Y
EC 0.004 0.85 Y
AU 0.006 1.25 N
NZ 0.004 1.25 Y
LK 0.006 0.70 G
KH 0.008 0.65 E
PA 0.002 1.00 N
"""
_origin_parts = np.array(_ORIGINS.split(), dtype="U8").reshape(-1, 4)
ORIGIN_CODES = _origin_parts[:, 0].astype("U2")
_ORIGIN_SHARE = normalise(_origin_parts[:, 1].astype(np.float64))
_ORIGIN_PRICE = _origin_parts[:, 2].astype(np.float64)
_ORIGIN_REGIME = _origin_parts[:, 3].astype("U1")

#: Departure countries that act as transshipment hubs; origin != departure via one of them is risky.
TRANSSHIPMENT_HUBS = ("AE", "SG", "HK", "MY", "PA")
_TRANSIT_OTHER = ("GB", "TR", "US", "CH", "NO", "MA")  # ordinary (non-hub) re-export countries

#: Origins the legacy rule watches (a mix of right and wrong intuitions).
LEGACY_WATCHED_ORIGINS = ("CN", "TR", "NG", "PK", "AE", "VN", "BD")

# Customs offices: code, transport-mode mix (sea, rail, road, air, post) and share of traffic.
_OFFICES = """
010 0.85 0.05 0.10 0.00 0.00 0.09
020 0.80 0.05 0.15 0.00 0.00 0.08
030 0.75 0.10 0.15 0.00 0.00 0.07
040 0.70 0.10 0.20 0.00 0.00 0.05
050 0.60 0.20 0.20 0.00 0.00 0.04
060 0.00 0.00 0.05 0.95 0.00 0.08
070 0.00 0.00 0.05 0.95 0.00 0.06
080 0.00 0.00 0.10 0.90 0.00 0.04
090 0.00 0.00 0.10 0.80 0.10 0.03
100 0.00 0.00 0.05 0.70 0.25 0.03
110 0.00 0.10 0.90 0.00 0.00 0.05
120 0.00 0.20 0.80 0.00 0.00 0.04
130 0.00 0.05 0.95 0.00 0.00 0.03
140 0.00 0.30 0.70 0.00 0.00 0.03
150 0.20 0.20 0.40 0.20 0.00 0.05
160 0.25 0.15 0.40 0.20 0.00 0.05
170 0.20 0.10 0.40 0.30 0.00 0.04
180 0.30 0.10 0.30 0.30 0.00 0.04
190 0.00 0.00 0.00 0.10 0.90 0.03
200 0.00 0.00 0.00 0.05 0.95 0.03
"""
_office_parts = np.array(_OFFICES.split(), dtype="U8").reshape(-1, 7)
_OFFICE_CODES = _office_parts[:, 0].astype("U3")
_OFFICE_MODE_MIX = _office_parts[:, 1:6].astype(np.float64)
_OFFICE_SHARE = normalise(_office_parts[:, 6].astype(np.float64))
_MODE_CODES = np.array(["10", "20", "30", "40", "50"])  # sea, rail, road, air, post
# Typical consignment value (USD) per transport mode; masses follow from value / unit value.
_MODE_TYPICAL_VALUE = np.array([60_000.0, 40_000.0, 20_000.0, 9_000.0, 180.0])

_IMPORT_TYPES = (np.array(["11", "21", "31", "41", "51"]), np.array([0.84, 0.06, 0.05, 0.03, 0.02]))
_IMPORT_USES = (np.array(["10", "20", "30", "40", "90"]), np.array([0.55, 0.25, 0.1, 0.06, 0.04]))
_PAYMENT_TYPES = (
    np.array(["11", "12", "13", "14", "51", "71"]),
    np.array([0.12, 0.55, 0.08, 0.1, 0.1, 0.05]),
)

# --------------------------------------------------------------------------------------------------
# Planted mechanism: coefficients of the true fraud logit (documented in docs/synthetic-data.md)
# --------------------------------------------------------------------------------------------------
INTERCEPT = -6.0
UNDERVALUE_SHARE = 0.10  # share of ordinary rows declared below value
UNDERVALUE_SHARE_OFFENDER = 0.30  # share for offender importers
UNDERVALUE_DEPTH = (0.40, 0.85)  # undervaluation depth, uniform
UNIT_VALUE_NOISE_SD = 0.20  # lognormal noise of honest unit values around the reference
UNDERVALUE_THRESHOLD = 0.30  # risk starts once the declared/reference ratio is below 1 - 0.30
UNDERVALUE_SLOPE = 14.0  # logit per unit of (1 - ratio) beyond the threshold
OFFENDER_IMPORTER_SHARE = 0.06
OFFENDER_IMPORTER_EFFECT = 1.5
OFFENDER_DECLARANT_SHARE = 0.08
OFFENDER_DECLARANT_EFFECT = 0.7
NEW_IMPORTER_EFFECT = (1.2, 0.8, 0.4)  # 1st, 2nd, 3rd declaration of an importer in the history
TRANSSHIPMENT_EFFECT = 1.0
HIGH_TARIFF_CHAPTER_EFFECT = 0.5
TARIFF_RATE_EFFECT = 0.02  # per percentage point of the applied tax rate
DECOY_EFFECT = 1.0
NOISE_SD = 0.2

# Entity dynamics
ESTABLISHED_IMPORTER_SHARE = 0.75  # active from the first day (plus the top 5 % by activity)
LEAVING_IMPORTER_SHARE = 0.10  # stop trading at a uniformly random day

# Legacy targeting rule (the historical, only partly right, selection process)
LEGACY_BASE = 0.02
LEGACY_HIGH_TARIFF = 0.12
LEGACY_WATCHED_ORIGIN = 0.08
LEGACY_LARGE_VALUE_USD = 100_000.0
LEGACY_LARGE_VALUE = 0.15
LEGACY_LOW_VALUE_RATIO = 0.45  # value-database check: declared unit value below 45 % of reference
LEGACY_LOW_VALUE = 0.25
LEGACY_WATCHLIST = 0.45
LEGACY_WATCHLIST_HIT_SHARE = 0.35  # share of offender importers known to the watchlist
LEGACY_WATCHLIST_FALSE_SHARE = 0.02  # share of honest importers wrongly on the watchlist

CARGO_COLUMNS = (
    "declaration_id",
    "declared_at",
    "office_id",
    "process_type",
    "import_type",
    "import_use",
    "payment_type",
    "transport_mode",
    "declarant_id",
    "importer_id",
    "seller_id",
    "courier_id",
    "hs_code",
    "country_of_departure",
    "country_of_origin",
    "origin_indicator",
    "tax_type",
    "tax_rate",
    "net_mass_kg",
    "declared_value",
    "inspected",
    "selection",
    "fraud",
    "revenue_recovered",
    "oracle_p",
)

# Relative submission activity per UTC hour 0..23 (business hours, lunch dip, evening tail).
_HOUR_WEIGHTS = normalise(
    np.concatenate(
        [
            [0.3, 0.2, 0.2, 0.2, 0.4, 1.2, 3.0, 6.0, 8.0, 8.5, 8.5, 8.0],  # 00-11 UTC
            [7.0, 7.5, 8.0, 7.5, 6.0, 4.0, 2.5, 1.5, 1.0, 0.8, 0.6, 0.4],  # 12-23 UTC
        ]
    )
)


def _choice(rng: np.random.Generator, table: tuple[np.ndarray, np.ndarray], size: int) -> np.ndarray:
    values, weights = table
    return values[weighted_choice(rng, weights, size)]


def generate_cargo(
    rows: int,
    seed: int,
    start: dt.date = dt.date(2024, 1, 1),
    days: int = 540,
    random_share: float = 0.02,
) -> pd.DataFrame:
    """Generate ``rows`` customs declarations over ``[start, start + days)``, sorted by time.

    Deterministic for a given ``seed``. Only inspected rows carry an outcome (``fraud``,
    ``revenue_recovered``); ``oracle_p`` is the true fraud probability for benchmarking only.
    """
    check_args(rows, days, random_share)
    rng = np.random.default_rng(seed)
    n = int(rows)
    hs = HS_TABLE
    n_hs = len(hs.code)
    n_origin = len(ORIGIN_CODES)

    # ---- persistent entity universe ------------------------------------------------------------
    n_importers = max(n // 25, 10)
    n_declarants = int(np.clip(n // 100, 20, 1000))
    n_sellers = max(n // 40, 20)
    n_couriers = 15

    importer_activity = rng.permutation(zipf_weights(n_importers, 1.05, offset=8.0))
    importer_offender = rng.random(n_importers) < OFFENDER_IMPORTER_SHARE
    importer_watch = np.where(
        importer_offender,
        rng.random(n_importers) < LEGACY_WATCHLIST_HIT_SHARE,
        rng.random(n_importers) < LEGACY_WATCHLIST_FALSE_SHARE,
    )
    # Activity window: most importers (and all large ones) trade from the start, the others enter
    # later; some stop trading before the end of the history.
    large = importer_activity >= np.quantile(importer_activity, 0.95)
    established = large | (rng.random(n_importers) < ESTABLISHED_IMPORTER_SHARE)
    entry = np.where(established, 0, rng.integers(0, days, n_importers))
    leaves = ~large & (rng.random(n_importers) < LEAVING_IMPORTER_SHARE)
    exit_ = np.where(leaves, rng.integers(0, days + 1, n_importers), days)
    exit_ = np.clip(np.maximum(exit_, entry + 30), entry + 1, days)
    importer_home_origin = weighted_choice(rng, _ORIGIN_SHARE, n_importers)
    importer_home_office = weighted_choice(rng, _OFFICE_SHARE, n_importers)
    importer_main_declarant = weighted_choice(rng, zipf_weights(n_declarants, 0.9, 5.0), n_importers)
    hs_popularity = rng.lognormal(0.0, 1.0, n_hs)
    importer_home_hs = weighted_choice(rng, hs_popularity, n_importers)

    declarant_offender = rng.random(n_declarants) < OFFENDER_DECLARANT_SHARE

    seller_country = weighted_choice(rng, _ORIGIN_SHARE, n_sellers)
    seller_order = np.argsort(seller_country, kind="stable")
    seller_country_sorted = seller_country[seller_order]
    seller_block_start = np.searchsorted(seller_country_sorted, np.arange(n_origin), side="left")
    seller_block_count = np.searchsorted(seller_country_sorted, np.arange(n_origin), side="right") - (
        seller_block_start
    )

    importer_vocab = format_ids("IM", np.arange(n_importers), 6)
    declarant_vocab = format_ids("DC", np.arange(n_declarants), 4)
    seller_vocab = format_ids("SL", np.arange(n_sellers), 6)
    courier_vocab = format_ids("CR", np.arange(n_couriers), 3)

    # ---- rows: who declares when ---------------------------------------------------------------
    importer = weighted_choice(rng, importer_activity, n)
    weights = day_weights(
        start,
        days,
        weekday=(1.05, 1.0, 1.0, 1.0, 0.95, 0.25, 0.08),
        season_amplitude=0.12,
        season_peak_doy=290,
        yearly_growth=0.06,
    )
    day = sample_days_in_windows(rng, weights, entry[importer], exit_[importer])
    hour = weighted_choice(rng, _HOUR_WEIGHTS, n)
    micros = (
        day.astype(np.int64) * MICROS_PER_DAY
        + hour.astype(np.int64) * 3600 * MICROS_PER_SECOND
        + rng.integers(0, 3600 * MICROS_PER_SECOND, n)
    )
    order = np.argsort(micros, kind="stable")
    micros = micros[order]
    importer = importer[order]
    rank_in_importer = group_rank(importer)

    # ---- declaration attributes ----------------------------------------------------------------
    own_declarant = rng.random(n) < 0.8
    declarant = np.where(
        own_declarant,
        importer_main_declarant[importer],
        weighted_choice(rng, zipf_weights(n_declarants, 0.9, 5.0), n),
    )
    office = np.where(
        rng.random(n) < 0.7, importer_home_office[importer], weighted_choice(rng, _OFFICE_SHARE, n)
    )
    mode_idx = weighted_choice_rows(rng, _OFFICE_MODE_MIX[office])

    # HS code: importers specialise in one chapter, with some spread over everything else.
    hs_chapter_of = np.unique_inverse(hs.chapter).inverse_indices
    chapter_start = np.searchsorted(hs_chapter_of, np.arange(hs_chapter_of.max() + 1), side="left")
    chapter_count = np.bincount(hs_chapter_of)
    home_chapter = hs_chapter_of[importer_home_hs[importer]]
    same_chapter = chapter_start[home_chapter] + (rng.random(n) * chapter_count[home_chapter]).astype(int)
    u_hs = rng.random(n)
    hs_idx = np.where(
        u_hs < 0.45,
        importer_home_hs[importer],
        np.where(u_hs < 0.75, same_chapter, weighted_choice(rng, hs_popularity, n)),
    )
    # Extend the HS6 code to 6, 8 or 10 digits (national subheadings).
    ext_len = weighted_choice(rng, np.array([0.25, 0.45, 0.30]), n)
    ext_digits = format_ids("", rng.integers(0, 10_000, n), 4)
    hs_code = np.strings.add(hs.code[hs_idx], np.strings.slice(ext_digits, 0, 2 * ext_len))

    origin = np.where(
        rng.random(n) < 0.65, importer_home_origin[importer], weighted_choice(rng, _ORIGIN_SHARE, n)
    )
    origin_code = ORIGIN_CODES[origin]
    # Departure: usually the origin, sometimes via a transshipment hub or an ordinary third country.
    u_dep = rng.random(n)
    hub_dep = np.array(TRANSSHIPMENT_HUBS)[rng.integers(0, len(TRANSSHIPMENT_HUBS), n)]
    other_dep = np.array(_TRANSIT_OTHER)[rng.integers(0, len(_TRANSIT_OTHER), n)]
    departure_code = np.where(u_dep < 0.10, hub_dep, np.where(u_dep < 0.16, other_dep, origin_code))
    transshipment = np.isin(departure_code, TRANSSHIPMENT_HUBS) & (departure_code != origin_code)

    # Seller: a supplier located in the origin country; missing for ~12 % of rows.
    block = seller_block_count[origin]
    pick = (rng.random(n) * np.maximum(block, 1)).astype(np.int64)
    seller = np.where(
        block > 0,
        seller_order[np.minimum(seller_block_start[origin] + pick, n_sellers - 1)],
        rng.integers(0, n_sellers, n),
    )
    seller_missing = rng.random(n) < 0.12

    # Process type and courier: express consignments by air/post go through couriers.
    express_mode = np.isin(mode_idx, (3, 4))
    u_proc = rng.random(n)
    process_type = np.where(
        express_mode,
        np.where(u_proc < 0.55, "B", np.where(u_proc < 0.95, "A", "C")),
        np.where(u_proc < 0.05, "B", np.where(u_proc < 0.93, "A", "C")),
    )
    has_courier = np.where(process_type == "B", rng.random(n) < 0.9, rng.random(n) < 0.01)
    courier = weighted_choice(rng, zipf_weights(n_couriers, 1.0, 1.0), n)

    # Preference regime -> origin indicator, tax type and applied rate.
    regime = _ORIGIN_REGIME[origin]
    claims = rng.random(n) < 0.85
    indicator = np.where(
        claims & (regime == "Y"), "Y", np.where(claims & np.isin(regime, ("G", "E")), "G", "N")
    )
    mfn = hs.mfn_rate[hs_idx]
    applied = np.where(
        indicator == "Y",
        np.round(mfn * 0.2, 1),
        np.where(indicator == "G", np.where(regime == "E", 0.0, np.round(mfn * 0.35, 1)), mfn),
    )
    chapter = hs.chapter[hs_idx]
    excise = np.isin(chapter, EXCISE_CHAPTERS)
    tax_type = np.where(
        indicator == "Y", "A10", np.where(indicator == "G", "A20", np.where(excise, "E00", "A00"))
    )

    # Mass, value and (under)valuation.
    ref_uv = hs.ref_unit_value[hs_idx] * _ORIGIN_PRICE[origin]
    typical_value = _MODE_TYPICAL_VALUE[mode_idx] * rng.lognormal(0.0, 1.0, n)
    net_mass = np.maximum(np.round(typical_value / ref_uv, 3), 0.001)
    offender_row = importer_offender[importer]
    undervalued = rng.random(n) < np.where(offender_row, UNDERVALUE_SHARE_OFFENDER, UNDERVALUE_SHARE)
    depth = np.where(undervalued, rng.uniform(*UNDERVALUE_DEPTH, n), 0.0)
    declared_uv = ref_uv * rng.lognormal(0.0, UNIT_VALUE_NOISE_SD, n) * (1.0 - depth)
    declared_value = np.round(net_mass * declared_uv, 2)
    value_ratio = declared_value / (net_mass * ref_uv)

    # ---- true fraud probability ----------------------------------------------------------------
    new_effect = np.zeros(n)
    for k, eff in enumerate(NEW_IMPORTER_EFFECT):
        new_effect[rank_in_importer == k] = eff
    high_chapter = np.isin(chapter, HIGH_TARIFF_CHAPTERS)
    logit = (
        INTERCEPT
        + UNDERVALUE_SLOPE * np.maximum(0.0, (1.0 - value_ratio) - UNDERVALUE_THRESHOLD)
        + OFFENDER_IMPORTER_EFFECT * offender_row
        + OFFENDER_DECLARANT_EFFECT * declarant_offender[declarant]
        + new_effect
        + TRANSSHIPMENT_EFFECT * transshipment
        + HIGH_TARIFF_CHAPTER_EFFECT * high_chapter
        + TARIFF_RATE_EFFECT * applied
        + DECOY_EFFECT * hs.decoy[hs_idx]
        + rng.normal(0.0, NOISE_SD, n)
    )
    oracle_p = np.clip(sigmoid(logit), 1e-9, 1 - 1e-9)
    fraud = rng.random(n) < oracle_p

    # ---- legacy selection ----------------------------------------------------------------------
    p_target = or_combine(
        np.full(n, LEGACY_BASE),
        LEGACY_HIGH_TARIFF * high_chapter,
        LEGACY_WATCHED_ORIGIN * np.isin(origin_code, LEGACY_WATCHED_ORIGINS),
        LEGACY_LARGE_VALUE * (declared_value > LEGACY_LARGE_VALUE_USD),
        LEGACY_LOW_VALUE * (value_ratio < LEGACY_LOW_VALUE_RATIO),
        LEGACY_WATCHLIST * importer_watch[importer],
    )
    inspected, selection = select_for_inspection(rng, p_target, random_share)

    # Revenue recovered: evaded duty + VAT on the undervaluation, or the rate gap, plus a penalty.
    true_value = net_mass * ref_uv * np.exp(rng.normal(0.0, 0.05, n))
    evaded_base = np.maximum(true_value - declared_value, 0.0) * (applied + 19.0) / 100.0
    rate_gap = np.where(hs.decoy[hs_idx], 15.0, 0.0) + np.where(high_chapter, applied * 0.3, 0.0)
    evaded_class = true_value * rate_gap / 100.0
    generic = declared_value * rng.uniform(0.02, 0.12, n)
    penalty = 1.0 + rng.uniform(0.1, 0.5, n)
    revenue = np.where(fraud, np.round((evaded_base + evaded_class + generic) * penalty + 25.0, 2), 0.0)

    df = pd.DataFrame(
        {
            "declaration_id": str_series(format_ids("C", np.arange(1, n + 1), 9)),
            "declared_at": timestamps(start, micros),
            "office_id": str_from_codes(_OFFICE_CODES, office),
            "process_type": str_series(process_type),
            "import_type": str_series(_choice(rng, _IMPORT_TYPES, n)),
            "import_use": str_series(_choice(rng, _IMPORT_USES, n)),
            "payment_type": str_series(_choice(rng, _PAYMENT_TYPES, n)),
            "transport_mode": str_from_codes(_MODE_CODES, mode_idx),
            "declarant_id": str_from_codes(declarant_vocab, declarant),
            "importer_id": str_from_codes(importer_vocab, importer),
            "seller_id": str_from_codes(seller_vocab, seller, missing=seller_missing),
            "courier_id": str_from_codes(courier_vocab, courier, missing=~has_courier),
            "hs_code": str_series(hs_code),
            "country_of_departure": str_series(departure_code),
            "country_of_origin": str_from_codes(ORIGIN_CODES, origin),
            "origin_indicator": str_series(indicator),
            "tax_type": str_series(tax_type),
            "tax_rate": applied.astype(np.float64),
            "net_mass_kg": net_mass.astype(np.float64),
            "declared_value": declared_value.astype(np.float64),
            "inspected": inspected,
            "selection": str_series(selection),
            "fraud": revealed_int8(inspected, fraud),
            "revenue_recovered": revealed_float64(inspected, revenue),
            "oracle_p": oracle_p,
        }
    )
    return df[list(CARGO_COLUMNS)]
