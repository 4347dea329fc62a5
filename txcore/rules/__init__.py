"""Rules and reference data: rule-set versions from TOML and the version in force
(``book``), the card registry and partner merchants (``refdata``), the registry kept
as Arrow columns (``registry``) and validated by columns (``registry_check``)."""
