"""The deploy-time scorecard: the card as data and everything needed to score with it.

Fitting lives in `pipeline.scorecard` (OptBinning, statsmodels, scikit-learn); this package
imports none of them, so the score command, the exports and every stage that only scores load
numpy, pandas and the card.

- `pipeline.card.spec`: the training card's JSON (`card_spec`, `load_card`, schema version).
- `pipeline.card.scoring`: PDO scaling, bin lookup, `score_frame`, reason codes, calibrated PD.
- `pipeline.card.inputs`: a frame checked against the card's declared domains before scoring.
- `pipeline.card.bundle`: the published bundle's JSON Schema, content hash and loading.
- `pipeline.card.routing`: segment cards, and which card scores which row.
"""

from pipeline.card.bundle import (
    BUNDLE_KEYS,
    BUNDLE_SCHEMA,
    HASH_KEY,
    SCHEMA_FILE,
    check_bundle,
    content_hash,
    feature_domain,
    load_bundle,
    seal_bundle,
    units_from_dictionary,
    write_schema,
)
from pipeline.card.inputs import SIZE_DOMAIN, clean_inputs
from pipeline.card.routing import all_features
from pipeline.card.scoring import (
    assign_bins,
    attribute_points,
    calibrated_pd,
    category_key,
    numeric_column,
    reason_codes,
    scaling_constants,
    score_frame,
    score_to_pd,
)
from pipeline.card.spec import CARD_KIND, HALDANE, SCHEMA_VERSION, card_spec, load_card

__all__ = [
    "all_features",
    "BUNDLE_KEYS",
    "BUNDLE_SCHEMA",
    "CARD_KIND",
    "HALDANE",
    "HASH_KEY",
    "SCHEMA_FILE",
    "SCHEMA_VERSION",
    "SIZE_DOMAIN",
    "assign_bins",
    "attribute_points",
    "calibrated_pd",
    "card_spec",
    "category_key",
    "check_bundle",
    "clean_inputs",
    "content_hash",
    "feature_domain",
    "load_bundle",
    "load_card",
    "numeric_column",
    "reason_codes",
    "scaling_constants",
    "score_frame",
    "score_to_pd",
    "seal_bundle",
    "units_from_dictionary",
    "write_schema",
]
