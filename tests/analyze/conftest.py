from store.backends import clickhouse_url, store_location

__all__ = ["clickhouse_url", "store_location"]
