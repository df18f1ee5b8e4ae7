"""The feature definition as SQL, one module per block (settlement, open balances, experiences, labels)
and the assembly (`snapshot`); ``dictionary.yaml`` beside it states each output feature."""

from pipeline.features.sql.common import (
    AGING_BUCKETS,
    EXPERT_COLUMNS,
    LATE_BUCKETS,
    PAYDEX_ANCHORS,
    collection_effectiveness_index,
    is_materialized,
    paydex_points,
)
from pipeline.features.sql.labels import LABEL_INPUTS, label_sql, vintage_sql
from pipeline.features.sql.open_balances import roll_rate_sql
from pipeline.features.sql.settlement import (
    INVOICE_KEYS,
    SETTLEMENT_OUTPUTS,
    SETTLEMENT_TABLES,
    settlement_sql,
)
from pipeline.features.sql.snapshot import MASTER_HISTORY_SQL, build_feature_sql

__all__ = [
    "AGING_BUCKETS",
    "EXPERT_COLUMNS",
    "INVOICE_KEYS",
    "LABEL_INPUTS",
    "LATE_BUCKETS",
    "MASTER_HISTORY_SQL",
    "PAYDEX_ANCHORS",
    "SETTLEMENT_OUTPUTS",
    "SETTLEMENT_TABLES",
    "build_feature_sql",
    "collection_effectiveness_index",
    "is_materialized",
    "label_sql",
    "paydex_points",
    "roll_rate_sql",
    "settlement_sql",
    "vintage_sql",
]
