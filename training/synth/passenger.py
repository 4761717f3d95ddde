"""Synthetic air-passenger records with a planted finding mechanism and a biased inspection history.

See ``docs/synthetic-data.md`` for the full description of every planted mechanism, its coefficient
and the legacy targeting rule. The constants below are the single source of truth for those numbers.

``flight_number`` and ``departure_at`` describe the inbound flight into the screening country (the
last leg of ``route``); ``origin_airport`` is where the journey started.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from training.synth.common import (
    MICROS_PER_DAY,
    MICROS_PER_SECOND,
    check_args,
    day_weights,
    format_ids,
    normalise,
    or_combine,
    revealed_int8,
    select_for_inspection,
    sigmoid,
    str_from_codes,
    str_series,
    timestamps,
    weighted_choice,
    zipf_weights,
)

__all__ = [
    "HOME_AIRPORTS",
    "MONITORED_COLUMNS",
    "PASSENGER_COLUMNS",
    "RISK_TRANSIT_HUBS",
    "generate_passenger",
]

# --------------------------------------------------------------------------------------------------
# Reference tables
# --------------------------------------------------------------------------------------------------

#: The screening country's arrival airports and their share of inbound traffic.
HOME_AIRPORTS = ("FRA", "MUC", "DUS", "BER", "HAM", "CGN")
_HOME_SHARE = normalise(np.array([0.38, 0.24, 0.12, 0.12, 0.09, 0.05]))

# Origin airports: IATA code, country (ISO2), region, relative traffic, own carrier (or "-").
_ORIGIN_ROWS = """
JFK US north_america 3.0 UA
ORD US north_america 1.5 UA
ATL US north_america 1.2 DL
LAX US north_america 1.2 -
MIA US north_america 1.0 -
YYZ CA north_america 1.2 AC
MEX MX latin_america 1.0 -
GRU BR latin_america 1.2 -
EZE AR latin_america 0.6 -
BOG CO latin_america 0.7 -
LIM PE latin_america 0.5 -
SCL CL latin_america 0.4 -
PUJ DO caribbean 0.5 -
HAV CU caribbean 0.3 -
MBJ JM caribbean 0.2 -
LOS NG west_africa 0.8 -
ACC GH west_africa 0.5 -
DKR SN west_africa 0.3 -
ADD ET east_africa 0.5 ET
NBO KE east_africa 0.5 -
JNB ZA southern_africa 0.8 -
CAI EG north_africa 0.9 MS
CMN MA north_africa 0.8 AT
TUN TN north_africa 0.6 TU
DXB AE middle_east 2.0 EK
DOH QA middle_east 1.2 QR
TLV IL middle_east 1.0 LY
AMM JO middle_east 0.4 RJ
IST TR europe_other 3.0 TK
LHR GB europe_other 2.5 BA
ZRH CH europe_other 1.5 LX
BEG RS europe_other 0.6 JU
DEL IN south_asia 1.0 AI
BOM IN south_asia 0.7 AI
BKK TH southeast_asia 1.2 TG
SIN SG southeast_asia 1.0 SQ
PEK CN east_asia 1.0 CA
PVG CN east_asia 1.0 MU
HKG HK east_asia 0.8 CX
NRT JP east_asia 0.8 NH
ICN KR east_asia 0.7 OZ
SYD AU oceania 0.4 -
"""
_o = np.array(_ORIGIN_ROWS.split(), dtype="U16").reshape(-1, 5)
ORIGIN_AIRPORTS = _o[:, 0].astype("U3")
_ORIGIN_COUNTRY = _o[:, 1].astype("U2")
_ORIGIN_REGION = _o[:, 2]
_ORIGIN_TRAFFIC = _o[:, 3].astype(np.float64)
_ORIGIN_CARRIER = _o[:, 4].astype("U2")

#: Connection hubs and the carrier operating the inbound leg from each of them.
_HUB_CARRIER = {
    "IST": "TK",
    "DXB": "EK",
    "DOH": "QR",
    "AMS": "KL",
    "CDG": "AF",
    "LHR": "BA",
    "MAD": "IB",
    "LIS": "TP",
    "ADD": "ET",
    "CAI": "MS",
    "ZRH": "LX",
}
#: Transit airports of the planted route mechanism (documented; illustrative, not an assessment).
RISK_TRANSIT_HUBS = ("ADD", "CAI", "LIS", "MAD")

_REGION_HUBS = {
    "north_america": ("LHR", "AMS", "CDG", "ZRH", "IST"),
    "latin_america": ("MAD", "LIS", "CDG", "AMS", "IST"),
    "caribbean": ("MAD", "CDG", "AMS", "LIS"),
    "west_africa": ("ADD", "CAI", "IST", "CDG", "LIS", "AMS"),
    "east_africa": ("ADD", "DOH", "IST", "DXB", "CAI"),
    "southern_africa": ("DXB", "DOH", "IST", "ADD", "LHR"),
    "north_africa": ("IST", "CAI", "CDG", "MAD"),
    "middle_east": ("IST", "CAI", "AMS", "ZRH"),
    "europe_other": ("AMS", "CDG", "ZRH", "IST"),
    "south_asia": ("DXB", "DOH", "IST", "LHR", "ZRH"),
    "southeast_asia": ("DXB", "DOH", "IST", "AMS", "ZRH"),
    "east_asia": ("DXB", "IST", "AMS", "CDG", "ZRH"),
    "oceania": ("DXB", "DOH", "LHR"),
}
#: Origin airports with direct flights to every home airport (short/medium haul, big hubs).
_DIRECT_EVERYWHERE = ("IST", "DXB", "DOH", "LHR", "ZRH", "TLV", "CAI", "CMN", "TUN", "BEG", "AMM")

#: Origin regions the legacy rule watches.
LEGACY_WATCHED_REGIONS = ("west_africa", "latin_america", "caribbean")

# Nationalities: besides the home country and the origin country, people of other countries travel.
_EU_NATIONALITIES = ("DE", "FR", "IT", "ES", "PL", "NL", "RO", "AT", "GR", "PT")
_GLOBAL_NATIONALITIES = (
    np.array(
        ["FR", "IT", "ES", "PL", "NL", "RO", "AT", "GR", "PT", "US", "GB", "TR", "IN", "CN", "UA", "SY"]
    ),
    np.array([6, 5, 4, 5, 4, 3, 3, 2, 1, 6, 4, 6, 3, 3, 3, 2], dtype=np.float64),
)
_REGION_EXTRA_NATIONALITIES = {
    "north_america": ("US", "CA", "MX"),
    "latin_america": ("BR", "AR", "CO", "PE", "VE", "CL", "EC"),
    "caribbean": ("DO", "CU", "JM", "HT"),
    "west_africa": ("NG", "GH", "SN", "CI", "CM", "ML"),
    "east_africa": ("ET", "KE", "ER", "SO", "UG"),
    "southern_africa": ("ZA", "ZW", "MZ"),
    "north_africa": ("EG", "MA", "TN", "DZ"),
    "middle_east": ("AE", "IL", "JO", "LB", "SY", "IQ"),
    "europe_other": ("TR", "GB", "CH", "RS", "UA", "BA"),
    "south_asia": ("IN", "PK", "BD", "LK", "AF"),
    "southeast_asia": ("TH", "SG", "VN", "PH", "MY", "ID"),
    "east_asia": ("CN", "JP", "KR", "HK", "TW"),
    "oceania": ("AU", "NZ"),
}

# --------------------------------------------------------------------------------------------------
# Planted mechanism: coefficients of the true finding logit (documented in docs/synthetic-data.md)
# --------------------------------------------------------------------------------------------------
INTERCEPT = -5.3
ONE_WAY_EFFECT = 0.3
CASH_EFFECT = 0.4
LATE_BOOKING_HOURS = 48.0
LATE_BOOKING_EFFECT = 0.3
COURIER_PATTERN_EFFECT = 4.0  # one-way AND cash AND booked < 48 h before departure (interaction)
RISK_HUB_EFFECT = 1.2
BAG_NORMAL_MAX_KG = 24.0  # average weight per checked bag above which risk rises
BAG_SLOPE = 0.4  # logit per kg per bag above BAG_NORMAL_MAX_KG
BAG_CAP_KG = 12.0
DOC_EXPIRY_DAYS = 90
DOC_EXPIRY_EFFECT = 1.6
BAD_AGENCY_SHARE = 0.08
BAD_AGENCY_EFFECT = 1.2
SOLO_EFFECT = 0.3
NO_RECENT_TRIPS_EFFECT = 0.3
PREMIUM_CLASS_EFFECT = -0.6
NOISE_SD = 0.2
# How often the risky observables occur (generation, not mechanism)
HEAVY_BAG_SHARE = 0.03  # bags of 28-45 kg each (+5 points for one-way cash tickets)
DOC_EXPIRING_SHARE = 0.035  # document expires between 20 days before and 90 days after departure

# Legacy targeting rule
LEGACY_BASE = 0.06
LEGACY_WATCHED_REGION = 0.25
LEGACY_ONE_WAY = 0.08
LEGACY_CASH = 0.25
LEGACY_HEAVY_BAGS_KG = 46.0
LEGACY_HEAVY_BAGS = 0.20
LEGACY_WATCHLIST = 0.35
LEGACY_WATCHLIST_HIT_SHARE = 0.40
LEGACY_WATCHLIST_FALSE_SHARE = 0.02
TARGETING_BIAS_ODDS = 4.0

PASSENGER_COLUMNS = (
    "record_id",
    "carrier",
    "flight_number",
    "departure_at",
    "origin_airport",
    "destination_airport",
    "route",
    "booking_at",
    "ticket_type",
    "payment_method",
    "travel_class",
    "party_size",
    "checked_bags",
    "bag_weight_kg",
    "document_type",
    "document_issuing_country",
    "document_expiry",
    "travel_agency_id",
    "trips_last_12m",
    "nationality",
    "sex",
    "birth_year",
    "inspected",
    "selection",
    "finding",
    "oracle_p",
)
#: Stored for fairness monitoring only; never used by the true mechanism.
MONITORED_COLUMNS = ("nationality", "sex", "birth_year")

_PAYMENT_METHODS = np.array(["card", "cash", "transfer", "voucher"])
_CLASSES = np.array(["economy", "premium_economy", "business", "first"])
_DOC_TYPES = np.array(["passport", "id_card", "residence_permit"])
_SEXES = np.array(["F", "M", "X"])


def _build_schedule(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A persistent flight schedule: one row per (flight number) with its route and traffic weight.

    Loops over airports and routes (a few hundred items), never over passenger rows.
    """
    carrier, number, origin, hub, dest, minute, weight = [], [], [], [], [], [], []
    used: dict[str, set[int]] = {}

    def add_flights(c: str, o: int, h: str, d: int, w: float) -> None:
        n_flights = 1 + int(rng.random() < 0.5)
        shares = rng.dirichlet(np.full(n_flights, 3.0))
        for share in shares:
            taken = used.setdefault(c, set())
            num = int(rng.integers(100, 9999))
            while num in taken:
                num = int(rng.integers(100, 9999))
            taken.add(num)
            carrier.append(c)
            number.append(num)
            origin.append(o)
            hub.append(h)
            dest.append(d)
            minute.append(int(rng.integers(5 * 60, 23 * 60)) // 5 * 5)
            weight.append(w * share)

    for o, code in enumerate(ORIGIN_AIRPORTS):
        hubs = [h for h in _REGION_HUBS[_ORIGIN_REGION[o]] if h != code]
        for d, home in enumerate(HOME_AIRPORTS):
            od_weight = _ORIGIN_TRAFFIC[o] * _HOME_SHARE[d]
            direct = code in _DIRECT_EVERYWHERE or (_ORIGIN_TRAFFIC[o] >= 0.6 and home in ("FRA", "MUC"))
            direct_share = 0.55 if direct else 0.0
            if direct:
                own = _ORIGIN_CARRIER[o]
                if own != "-" and rng.random() < 0.5:
                    add_flights(own, o, "", d, od_weight * direct_share)
                else:
                    add_flights("LH", o, "", d, od_weight * direct_share)
            hub_shares = rng.dirichlet(np.full(len(hubs), 2.0))
            for h, share in zip(hubs, hub_shares, strict=True):
                add_flights(_HUB_CARRIER[h], o, h, d, od_weight * (1 - direct_share) * share)

    carrier_arr = np.array(carrier, dtype="U2")
    flight_number = np.strings.add(carrier_arr, np.array(number).astype("U4"))
    origin_arr = np.array(origin)
    hub_arr = np.array(hub, dtype="U3")
    dest_arr = np.array(dest)
    routes = np.empty(len(carrier), dtype=object)
    routes[:] = [
        [ORIGIN_AIRPORTS[o], *([h] if h else []), HOME_AIRPORTS[d]]
        for o, h, d in zip(origin_arr, hub_arr, dest_arr, strict=True)
    ]
    return {
        "carrier": carrier_arr,
        "flight_number": flight_number,
        "origin": origin_arr,
        "hub": hub_arr,
        "dest": dest_arr,
        "minute": np.array(minute, dtype=np.int64),
        "weight": np.array(weight),
        "route": routes,
        "risk_hub": np.isin(hub_arr, RISK_TRANSIT_HUBS),
    }


def _nationality_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per origin airport: a padded table of regional nationalities and their count."""
    width = max(len(v) for v in _REGION_EXTRA_NATIONALITIES.values())
    table = np.full((len(ORIGIN_AIRPORTS), width), "", dtype="U2")
    counts = np.zeros(len(ORIGIN_AIRPORTS), dtype=np.int64)
    for o, region in enumerate(_ORIGIN_REGION):
        extra = _REGION_EXTRA_NATIONALITIES[region]
        table[o, : len(extra)] = extra
        counts[o] = len(extra)
    return table, counts, np.array(_EU_NATIONALITIES)


def generate_passenger(
    rows: int,
    seed: int,
    start: dt.date = dt.date(2024, 1, 1),
    days: int = 540,
    random_share: float = 0.02,
    targeting_bias: str | None = None,
) -> pd.DataFrame:
    """Generate ``rows`` passenger records departing in ``[start, start + days)``, sorted by time.

    Deterministic for a given ``seed``. Only inspected rows carry an outcome (``finding``);
    ``oracle_p`` is the true probability of a finding, for benchmarking only. ``targeting_bias``
    (an ISO2 nationality) makes the legacy rule over-select that nationality (x4 targeting odds)
    without changing anyone's true risk; all other columns are identical to the unbiased history.
    """
    check_args(rows, days, random_share)
    if targeting_bias is not None and (
        not isinstance(targeting_bias, str) or len(targeting_bias) != 2 or not targeting_bias.isupper()
    ):
        raise ValueError(f"targeting_bias must be an ISO-3166 alpha-2 code or None, got {targeting_bias!r}")
    rng = np.random.default_rng(seed)
    n = int(rows)

    # ---- persistent universe: schedule and travel agencies -------------------------------------
    sched = _build_schedule(rng)
    n_agencies = int(np.clip(n // 200, 20, 2000))
    agency_activity = rng.permutation(zipf_weights(n_agencies, 1.0, offset=5.0))
    agency_bad = rng.random(n_agencies) < BAD_AGENCY_SHARE
    agency_watch = np.where(
        agency_bad,
        rng.random(n_agencies) < LEGACY_WATCHLIST_HIT_SHARE,
        rng.random(n_agencies) < LEGACY_WATCHLIST_FALSE_SHARE,
    )
    agency_vocab = format_ids("TA", np.arange(n_agencies), 5)

    # ---- when and on which flight ---------------------------------------------------------------
    flight = weighted_choice(rng, sched["weight"], n)
    weights = day_weights(
        start,
        days,
        weekday=(1.0, 0.85, 0.9, 1.0, 1.15, 1.0, 1.15),
        season_amplitude=0.15,
        season_peak_doy=205,
        yearly_growth=0.04,
        extra_peaks=((350, 366, 1.25), (1, 6, 1.15)),
    )
    day = weighted_choice(rng, weights, n)
    dep_micros = day.astype(np.int64) * MICROS_PER_DAY + sched["minute"][flight] * 60 * MICROS_PER_SECOND
    order = np.argsort(dep_micros, kind="stable")
    dep_micros = dep_micros[order]
    flight = flight[order]
    day = day[order]
    origin = sched["origin"][flight]
    dest = sched["dest"][flight]

    # ---- booking behaviour ----------------------------------------------------------------------
    has_agency = rng.random(n) < 0.45
    agency = weighted_choice(rng, agency_activity, n)
    bad = has_agency & agency_bad[agency]
    one_way = rng.random(n) < 0.18 + 0.22 * bad
    u_pay = rng.random(n)
    p_cash = np.where(has_agency, 0.04, 0.01) + 0.12 * one_way + 0.15 * bad
    p_transfer = np.where(has_agency, 0.12, 0.02)
    payment = np.where(
        u_pay < p_cash,
        1,
        np.where(u_pay < p_cash + p_transfer, 2, np.where(u_pay < p_cash + p_transfer + 0.03, 3, 0)),
    )
    cash = payment == 1
    p_late = 0.05 + 0.30 * (one_way & cash) + 0.05 * bad
    late = rng.random(n) < p_late
    lead_hours = np.where(
        late,
        rng.uniform(2.0, LATE_BOOKING_HOURS, n),
        LATE_BOOKING_HOURS + rng.lognormal(np.log(24.0 * 21), 1.0, n),
    )
    book_micros = dep_micros - np.round(lead_hours * 3600.0).astype(np.int64) * MICROS_PER_SECOND

    u_class = rng.random(n)
    premium_scale = np.where(one_way & cash, 0.3, 1.0)
    cls = np.where(
        u_class < 0.02 * premium_scale,
        3,
        np.where(u_class < 0.13 * premium_scale, 2, np.where(u_class < 0.13 * premium_scale + 0.07, 1, 0)),
    )
    premium = cls >= 2
    party_size = 1 + weighted_choice(rng, np.array([0.56, 0.25, 0.08, 0.07, 0.03, 0.01]), n)
    party_size = np.where(one_way & cash, 1, party_size)
    checked_bags = rng.binomial(party_size * 2, 0.42)
    heavy = rng.random(n) < HEAVY_BAG_SHARE + 0.05 * (one_way & cash)
    per_bag = np.where(heavy, rng.uniform(28.0, 45.0, n), np.clip(rng.normal(16.5, 4.0, n), 2.0, 32.0))
    bag_weight = np.where(checked_bags > 0, np.round(checked_bags * per_bag, 1), 0.0)
    per_bag_observed = np.where(checked_bags > 0, bag_weight / np.maximum(checked_bags, 1), 0.0)
    trips_mean = np.where(premium, 5.0, 1.5)
    trips = rng.negative_binomial(1, 1.0 / (1.0 + trips_mean))

    # ---- identity and documents (monitored attributes are drawn here) -----------------------------
    nat_table, nat_counts, eu = _nationality_tables()
    u_nat = rng.random(n)
    regional = nat_table[origin, (rng.random(n) * nat_counts[origin]).astype(np.int64)]
    global_pick = _GLOBAL_NATIONALITIES[0][weighted_choice(rng, _GLOBAL_NATIONALITIES[1], n)]
    nationality = np.where(
        u_nat < 0.35,
        "DE",
        np.where(u_nat < 0.73, _ORIGIN_COUNTRY[origin], np.where(u_nat < 0.83, regional, global_pick)),
    )
    is_eu = np.isin(nationality, eu)
    u_doc = rng.random(n)
    doc_type = np.where(is_eu, np.where(u_doc < 0.3, 1, 0), np.where(u_doc < 0.14, 2, 0))
    issuing = np.where(doc_type == 2, "DE", nationality)
    soon = rng.random(n) < DOC_EXPIRING_SHARE
    expiry_days = np.where(
        soon, rng.integers(-20, DOC_EXPIRY_DAYS, n), rng.integers(DOC_EXPIRY_DAYS, 3650, n)
    )
    expiry_micros = (day.astype(np.int64) + expiry_days) * MICROS_PER_DAY
    sex = weighted_choice(rng, np.array([0.485, 0.51, 0.005]), n)
    age = np.clip(np.round(rng.normal(41.0, 15.0, n)), 0, 90).astype(np.int64)
    dep_year = timestamps(start, dep_micros).astype("datetime64[Y]").astype(np.int64) + 1970
    birth_year = dep_year - age

    # ---- true finding probability -----------------------------------------------------------------
    risk_hub = sched["risk_hub"][flight]
    doc_soon = expiry_days < DOC_EXPIRY_DAYS
    logit = (
        INTERCEPT
        + ONE_WAY_EFFECT * one_way
        + CASH_EFFECT * cash
        + LATE_BOOKING_EFFECT * late
        + COURIER_PATTERN_EFFECT * (one_way & cash & late)
        + RISK_HUB_EFFECT * risk_hub
        + BAG_SLOPE * np.clip(per_bag_observed - BAG_NORMAL_MAX_KG, 0.0, BAG_CAP_KG)
        + DOC_EXPIRY_EFFECT * doc_soon
        + BAD_AGENCY_EFFECT * bad
        + SOLO_EFFECT * (party_size == 1)
        + NO_RECENT_TRIPS_EFFECT * (trips == 0)
        + PREMIUM_CLASS_EFFECT * premium
        + rng.normal(0.0, NOISE_SD, n)
    )
    oracle_p = np.clip(sigmoid(logit), 1e-9, 1 - 1e-9)
    finding = rng.random(n) < oracle_p

    # ---- legacy selection ----------------------------------------------------------------------
    p_target = or_combine(
        np.full(n, LEGACY_BASE),
        LEGACY_WATCHED_REGION * np.isin(_ORIGIN_REGION[origin], LEGACY_WATCHED_REGIONS),
        LEGACY_ONE_WAY * one_way,
        LEGACY_CASH * cash,
        LEGACY_HEAVY_BAGS * (bag_weight > LEGACY_HEAVY_BAGS_KG),
        LEGACY_WATCHLIST * (has_agency & agency_watch[agency]),
    )
    p_target = np.where(premium, 0.0, p_target)  # business and first class are never targeted
    if targeting_bias is not None:
        odds = TARGETING_BIAS_ODDS * p_target / np.maximum(1.0 - p_target, 1e-12)
        p_target = np.where(nationality == targeting_bias, odds / (1.0 + odds), p_target)
    inspected, selection = select_for_inspection(rng, p_target, random_share)

    route = sched["route"][flight]
    df = pd.DataFrame(
        {
            "record_id": str_series(format_ids("P", np.arange(1, n + 1), 9)),
            "carrier": str_from_codes(sched["carrier"], flight),
            "flight_number": str_from_codes(sched["flight_number"], flight),
            "departure_at": timestamps(start, dep_micros),
            "origin_airport": str_from_codes(ORIGIN_AIRPORTS, origin),
            "destination_airport": str_from_codes(np.array(HOME_AIRPORTS), dest),
            "route": pd.Series(list(map(list, route)), dtype=object),
            "booking_at": timestamps(start, book_micros),
            "ticket_type": str_series(np.where(one_way, "one_way", "return")),
            "payment_method": str_from_codes(_PAYMENT_METHODS, payment),
            "travel_class": str_from_codes(_CLASSES, cls),
            "party_size": party_size.astype(np.int64),
            "checked_bags": checked_bags.astype(np.int64),
            "bag_weight_kg": bag_weight.astype(np.float64),
            "document_type": str_from_codes(_DOC_TYPES, doc_type),
            "document_issuing_country": str_series(issuing),
            "document_expiry": timestamps(start, expiry_micros),
            "travel_agency_id": str_from_codes(agency_vocab, agency, missing=~has_agency),
            "trips_last_12m": trips.astype(np.int64),
            "nationality": str_series(nationality),
            "sex": str_from_codes(_SEXES, sex),
            "birth_year": birth_year.astype(np.int64),
            "inspected": inspected,
            "selection": str_series(selection),
            "finding": revealed_int8(inspected, finding),
            "oracle_p": oracle_p,
        }
    )
    return df[list(PASSENGER_COLUMNS)]
