from store.backends import (
    clickhouse_url,
    real_measurements,
    small_measurements,
    store_location,
    store_variant,
)

__all__ = ["clickhouse_url", "real_measurements", "small_measurements", "store_location", "store_variant"]
