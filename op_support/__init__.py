"""tinyir operator-support tables and deployability rules, one module per backend."""
