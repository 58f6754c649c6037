"""Data exchange: self-contained dataset exports (Parquet + manifest + crops) and their import."""
