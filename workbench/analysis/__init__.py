"""Research on recorded data: cleaning, bars, CSV import — DuckDB SQL behind DataFrame APIs."""
